//! gRPC's length-prefixed message framing on the fast path: a message goes
//! out as one flag byte (0: not compressed), its length (4 bytes, big
//! endian) and its protobuf bytes; answers come back the same way, but cut
//! into DATA frames anywhere, so the chunks are collected and [`next_message`] yields
//! whole messages (one split over several frames, or several in one).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message;
use tonic::Status;

/// Bytes before each message: the compressed flag and the length.
pub const PREFIX_LEN: usize = 5;
/// The largest answer accepted, as tonic's default decoding limit.
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;
/// Room a reused encode buffer keeps, so small requests never reallocate.
const ENCODE_CHUNK: usize = 4096;

/// Encodes `message` with its prefix into `buf` (reused between calls) and
/// returns the framed bytes.
pub fn encode<M: Message>(message: &M, buf: &mut BytesMut) -> Result<Bytes, Status> {
    let len = message.encoded_len();
    let wire_len = u32::try_from(len)
        .ok()
        .filter(|_| len <= MAX_MESSAGE_BYTES)
        .ok_or_else(|| Status::internal(format!("request of {len} bytes is too large")))?;
    if buf.capacity() - buf.len() < PREFIX_LEN + len {
        buf.reserve((PREFIX_LEN + len).max(ENCODE_CHUNK));
    }
    buf.put_u8(0);
    buf.put_u32(wire_len);
    message
        .encode(buf)
        .map_err(|e| Status::internal(format!("cannot encode the request: {e}")))?;
    Ok(buf.split().freeze())
}

/// The next whole message at the front of `buf` (taken out of it), if one
/// has arrived (see [`peek_message`]).
pub fn next_message(buf: &mut BytesMut) -> Result<Option<Bytes>, Status> {
    let Some((_, end)) = peek_message(buf)? else {
        return Ok(None);
    };
    buf.advance(PREFIX_LEN);
    Ok(Some(buf.split_to(end - PREFIX_LEN).freeze()))
}

/// The whole message at the front of `buf` and where it ends, if it has
/// arrived; an error for a prefix no answer of this client may carry
/// (compression, an oversized length).
pub fn peek_message(buf: &[u8]) -> Result<Option<(&[u8], usize)>, Status> {
    let Some(prefix) = buf.get(..PREFIX_LEN) else {
        return Ok(None);
    };
    let flag = prefix[0];
    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    check_prefix(flag, len)?;
    let end = PREFIX_LEN + len;
    Ok(buf.get(PREFIX_LEN..end).map(|message| (message, end)))
}

/// The same checks, and the same words, as tonic's decoder.
fn check_prefix(flag: u8, len: usize) -> Result<(), Status> {
    match flag {
        0 => {}
        1 => {
            return Err(Status::internal(
                "protocol error: received message with compressed-flag but no grpc-encoding was specified",
            ))
        }
        f => {
            return Err(Status::internal(format!(
            "protocol error: received message with invalid compression flag: {f} (valid flags are 0 and 1)"
        )))
        }
    }
    if len > MAX_MESSAGE_BYTES {
        return Err(Status::out_of_range(format!(
            "Error, decoded message length too large: found {len} bytes, the limit is: {MAX_MESSAGE_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Decodes one answer message.
pub fn decode<M: Message + Default>(bytes: impl Buf) -> Result<M, Status> {
    M::decode(bytes).map_err(|e| Status::internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bank::v1 as pb;

    fn result(id: &str, sequence: u64) -> pb::OperationResult {
        pb::OperationResult {
            request_id: id.into(),
            sequence,
            balance: 7,
            ..Default::default()
        }
    }

    fn framed(messages: &[pb::OperationResult]) -> Vec<u8> {
        let mut buf = BytesMut::new();
        messages
            .iter()
            .flat_map(|m| encode(m, &mut buf).unwrap().to_vec())
            .collect()
    }

    fn drain(d: &mut BytesMut) -> Vec<pb::OperationResult> {
        let mut out = Vec::new();
        while let Some(m) = next_message(d).unwrap() {
            out.push(decode(m).unwrap());
        }
        out
    }

    #[test]
    fn the_prefix_is_flag_and_big_endian_length_and_the_body_is_prost() {
        let m = result("r-1", 300);
        let wire = framed(std::slice::from_ref(&m));
        assert_eq!(wire[0], 0);
        assert_eq!(
            u32::from_be_bytes(wire[1..5].try_into().unwrap()) as usize,
            m.encoded_len()
        );
        assert_eq!(&wire[5..], m.encode_to_vec().as_slice());
    }

    #[test]
    fn a_message_split_anywhere_comes_out_whole() {
        let m = result("a-long-request-id-0123456789", 42);
        let wire = framed(std::slice::from_ref(&m));
        for cut in 0..=wire.len() {
            let mut d = BytesMut::new();
            d.extend_from_slice(&wire[..cut]);
            let first = drain(&mut d);
            d.extend_from_slice(&wire[cut..]);
            let rest = drain(&mut d);
            let all: Vec<_> = first.into_iter().chain(rest).collect();
            assert_eq!(all, vec![m.clone()], "cut at {cut}");
            assert!(d.is_empty());
        }
    }

    #[test]
    fn several_messages_in_one_chunk_and_one_byte_at_a_time() {
        let ms: Vec<_> = (0..5).map(|i| result(&format!("id-{i}"), i)).collect();
        let wire = framed(&ms);
        let mut d = BytesMut::new();
        d.extend_from_slice(&wire);
        assert_eq!(drain(&mut d), ms);
        let mut d = BytesMut::new();
        let mut got = Vec::new();
        for b in &wire {
            d.extend_from_slice(std::slice::from_ref(b));
            got.extend(drain(&mut d));
        }
        assert_eq!(got, ms);
    }

    #[test]
    fn an_empty_message_is_a_message() {
        let mut d = BytesMut::new();
        d.extend_from_slice(&[0, 0, 0, 0, 0]);
        let m = next_message(&mut d).unwrap().unwrap();
        assert_eq!(
            decode::<pb::OperationResult>(m).unwrap(),
            pb::OperationResult::default()
        );
    }

    #[test]
    fn bad_prefixes_and_bodies_are_clear_errors() {
        let cases: [(&[u8], tonic::Code, &str); 3] = [
            (&[1, 0, 0, 0, 1, 0], tonic::Code::Internal, "compressed-flag"),
            (
                &[7, 0, 0, 0, 0],
                tonic::Code::Internal,
                "invalid compression flag: 7",
            ),
            (&[0, 0xff, 0xff, 0xff, 0xff], tonic::Code::OutOfRange, "too large"),
        ];
        for (wire, code, words) in cases {
            let mut d = BytesMut::new();
            d.extend_from_slice(wire);
            let e = next_message(&mut d).unwrap_err();
            assert_eq!((e.code(), e.message().contains(words)), (code, true), "{e:?}");
        }
        // A body that is not protobuf: an error, not a panic.
        let garbage = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]);
        let e = decode::<pb::OperationResult>(garbage).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Internal);
    }
}
