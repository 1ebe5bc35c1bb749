//! HPACK (RFC 7541) on the fast path. Requests: every call of a connection
//! carries the same few header fields, so each is sent once as a literal
//! that enters the server's dynamic table and afterwards as a 1–2 byte
//! index — what a full encoder would send, without hashing every header of
//! every call to find it. Nothing is ever evicted: indexing is used only
//! while all fields fit the table the server allows, else every field goes
//! as a plain literal. Answers: decoded with a complete HPACK decoder
//! (dynamic table, Huffman: `hpack_decode.rs`), keeping only what a gRPC
//! answer's status needs.

use bytes::{BufMut, BytesMut};

use super::call::FastCall;
use super::frame::DEFAULT_TABLE_SIZE;
use super::hpack_decode::HpackDecoder;

/// Bytes HPACK counts per table entry beyond its name and value.
const ENTRY_OVERHEAD: usize = 32;
/// Index of the first dynamic table entry.
const FIRST_DYNAMIC: usize = 62;
/// The largest decoded header list an answer may carry (name + value + 32
/// per field, as HTTP/2 counts it); beyond it the connection is dropped.
pub const MAX_HEADER_LIST_BYTES: usize = 64 << 10;

/// One request header field.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: Box<[u8]>,
    pub value: Box<[u8]>,
}

impl Field {
    pub fn new(name: &str, value: &[u8]) -> Field {
        Field {
            name: name.as_bytes().into(),
            value: value.into(),
        }
    }

    fn size(&self) -> usize {
        self.name.len() + self.value.len() + ENTRY_OVERHEAD
    }
}

/// The request heads of one connection: fields, which each call sends, and
/// what the server's table holds of them.
#[derive(Debug, Clone)]
pub struct Encoder {
    fields: Vec<Field>,
    /// Per [`FastCall`]: the fields its calls send after `:method` and `:scheme`.
    blocks: [Vec<usize>; 4],
    /// Per field: its insertion number in the server's table, once sent.
    inserted_as: Vec<Option<usize>>,
    inserted: usize,
    indexing: bool,
    /// The table size this encoder holds itself to.
    table_max: usize,
    size_update: Option<usize>,
    /// `:scheme` as a static-table index byte: http, or https over TLS.
    scheme: u8,
}

/// `:scheme http` and `:scheme https` in the static table (indexed form).
const SCHEME_HTTP: u8 = 0x86;
const SCHEME_HTTPS: u8 = 0x87;

impl Encoder {
    /// `fields` are every field any call sends; `blocks[rpc]` the ones (by
    /// index into `fields`) a call of `rpc` sends, pseudo-headers first.
    pub fn new(fields: Vec<Field>, blocks: [Vec<usize>; 4]) -> Encoder {
        let mut encoder = Encoder {
            inserted_as: vec![None; fields.len()],
            fields,
            blocks,
            inserted: 0,
            indexing: true,
            table_max: DEFAULT_TABLE_SIZE,
            size_update: None,
            scheme: SCHEME_HTTP,
        };
        encoder.indexing = encoder.needed() <= encoder.table_max;
        encoder
    }

    fn needed(&self) -> usize {
        self.fields.iter().map(Field::size).sum()
    }

    /// The server's SETTINGS_HEADER_TABLE_SIZE: a smaller table is
    /// announced at the start of the next block; one too small for every
    /// field ends indexing.
    pub fn peer_table_size(&mut self, size: usize) {
        if size < self.table_max {
            self.table_max = size;
            self.size_update = Some(size);
            self.indexing &= self.needed() <= size;
        }
    }

    /// Calls say `:scheme https` (the connection is TLS).
    pub fn https(mut self) -> Encoder {
        self.scheme = SCHEME_HTTPS;
        self
    }

    /// Writes the header block of a call of `rpc`.
    pub fn encode(&mut self, rpc: FastCall, out: &mut BytesMut) {
        if let Some(size) = self.size_update.take() {
            put_int(out, 0x20, 5, size);
        }
        // :method POST and :scheme, from the static table.
        out.put_slice(&[0x83, self.scheme]);
        for &id in &self.blocks[rpc as usize] {
            let field = &self.fields[id];
            match (self.indexing, self.inserted_as[id]) {
                (true, Some(n)) => put_int(out, 0x80, 7, FIRST_DYNAMIC + self.inserted - 1 - n),
                (true, None) => {
                    out.put_u8(0x40);
                    put_literal(out, field);
                    self.inserted_as[id] = Some(self.inserted);
                    self.inserted += 1;
                }
                (false, _) => {
                    out.put_u8(0x00);
                    put_literal(out, field);
                }
            }
        }
    }
}

fn put_literal(out: &mut BytesMut, field: &Field) {
    put_int(out, 0, 7, field.name.len());
    out.put_slice(&field.name);
    put_int(out, 0, 7, field.value.len());
    out.put_slice(&field.value);
}

/// An HPACK integer with an `n`-bit prefix, after the high bits `first`.
fn put_int(out: &mut BytesMut, first: u8, n: u32, value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.put_u8(first | value as u8);
        return;
    }
    out.put_u8(first | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.put_u8((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.put_u8(rest as u8);
}

/// What a gRPC client reads from an answer's header block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    /// `:status`, when present and a number.
    pub http: Option<u16>,
    pub grpc_status: Option<Short>,
    pub grpc_message: Option<Vec<u8>>,
}

/// A short header value kept without allocating (every answer carries a
/// `grpc-status` of one or two digits): its first [`Short::KEPT`] bytes and
/// whether there were more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Short {
    len: u8,
    bytes: [u8; Short::KEPT],
}

impl Short {
    pub const KEPT: usize = 3;

    pub fn new(value: &[u8]) -> Short {
        let mut bytes = [0; Short::KEPT];
        let len = value.len().min(Short::KEPT);
        bytes[..len].copy_from_slice(&value[..len]);
        Short {
            len: len as u8,
            bytes,
        }
    }

    /// The value, cut at [`Short::KEPT`] bytes: a longer one reads as a
    /// 3-byte value, which no status code is.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The answer side's HPACK context.
pub struct Decoder {
    inner: HpackDecoder,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            inner: HpackDecoder::new(DEFAULT_TABLE_SIZE),
        }
    }
}

impl Decoder {
    /// Decodes one whole header block (a COMPRESSION_ERROR when it fails:
    /// the connection's table can no longer be trusted).
    pub fn decode(&mut self, block: &[u8]) -> Result<Fields, String> {
        let mut fields = Fields::default();
        let mut size = 0usize;
        self.inner
            .decode(block, |name, value| {
                size = size.saturating_add(name.len() + value.len() + ENTRY_OVERHEAD);
                match name {
                    b":status" => {
                        fields.http = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
                    }
                    b"grpc-status" => fields.grpc_status = Some(Short::new(value)),
                    b"grpc-message" => fields.grpc_message = Some(value.to_vec()),
                    _ => {}
                }
            })
            .map_err(|e| format!("bad header block: {e}"))?;
        if size > MAX_HEADER_LIST_BYTES {
            return Err(format!(
                "a header list of {size} bytes (the limit is {MAX_HEADER_LIST_BYTES})"
            ));
        }
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoder(extra: usize) -> Encoder {
        let mut fields = vec![
            Field::new(":path", b"/a"),
            Field::new(":path", b"/b"),
            Field::new(":path", b"/c"),
            Field::new(":path", b"/d"),
            Field::new(":authority", b"h:1"),
            Field::new("te", b"trailers"),
        ];
        fields.push(Field::new("x-big", &vec![b'v'; extra]));
        let block = |p: usize| vec![p, 4, 5, 6];
        Encoder::new(fields, [block(0), block(1), block(2), block(3)])
    }

    /// Decodes with an independent decoder, as the server would.
    fn decode_all(blocks: &[BytesMut], table: Option<usize>) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut d = loona_hpack::Decoder::new();
        if let Some(t) = table {
            d.set_max_allowed_table_size(t);
        }
        blocks.iter().map(|b| d.decode(b).expect("valid block")).collect()
    }

    fn names_values(list: &[(Vec<u8>, Vec<u8>)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into(),
                    String::from_utf8_lossy(v).into(),
                )
            })
            .collect()
    }

    #[test]
    fn repeated_heads_are_indexed_and_decode_to_the_same_fields() {
        let mut e = encoder(10);
        let rpcs = [
            FastCall::Withdraw,
            FastCall::Deposit,
            FastCall::Withdraw,
            FastCall::Transfer,
            FastCall::Withdraw,
        ];
        let blocks: Vec<BytesMut> = rpcs
            .iter()
            .map(|&rpc| {
                let mut out = BytesMut::new();
                e.encode(rpc, &mut out);
                out
            })
            .collect();
        // The third Withdraw is all indices: 2 static + 4 one-byte dynamic.
        assert_eq!(blocks[4].len(), 6, "{:x?}", blocks[4]);
        let decoded = decode_all(&blocks, None);
        for (rpc, list) in rpcs.iter().zip(&decoded) {
            let path = ["/a", "/b", "/c", "/d"][*rpc as usize];
            let want = [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", path),
                (":authority", "h:1"),
                ("te", "trailers"),
                ("x-big", "vvvvvvvvvv"),
            ];
            let want: Vec<(String, String)> = want.iter().map(|(n, v)| ((*n).into(), (*v).into())).collect();
            assert_eq!(names_values(list), want);
        }
    }

    #[test]
    fn fields_too_big_for_the_table_go_as_literals() {
        let mut e = encoder(5_000);
        let mut out = BytesMut::new();
        e.encode(FastCall::Withdraw, &mut out);
        let first = out.len();
        out.clear();
        e.encode(FastCall::Withdraw, &mut out);
        assert_eq!(out.len(), first);
        assert_eq!(names_values(&decode_all(&[out], None)[0])[5].1.len(), 5_000);
    }

    #[test]
    fn a_smaller_server_table_is_announced_and_ends_indexing_when_needed() {
        let mut e = encoder(10);
        let mut blocks = vec![BytesMut::new(), BytesMut::new(), BytesMut::new()];
        e.encode(FastCall::Withdraw, &mut blocks[0]);
        e.peer_table_size(100);
        e.encode(FastCall::Withdraw, &mut blocks[1]);
        e.encode(FastCall::Deposit, &mut blocks[2]);
        assert_eq!(blocks[1][0] & 0xe0, 0x20, "a size update first");
        let decoded = decode_all(&blocks, Some(DEFAULT_TABLE_SIZE));
        assert_eq!(names_values(&decoded[2])[2].1, "/b");
        assert_eq!(names_values(&decoded[1])[5].1, "vvvvvvvvvv");
    }

    #[test]
    fn large_integers_use_continuation_bytes() {
        let mut out = BytesMut::new();
        put_int(&mut out, 0, 5, 1337);
        assert_eq!(&out[..], &[31, 154, 10]); // RFC 7541 C.1.2
        out.clear();
        put_int(&mut out, 0, 5, 10);
        assert_eq!(&out[..], &[10]);
    }

    #[test]
    fn answers_keep_status_fields_and_refuse_garbage_and_huge_lists() {
        let mut enc = loona_hpack::Encoder::new();
        let block = enc.encode([
            (&b":status"[..], &b"200"[..]),
            (b"content-type", b"application/grpc"),
            (b"grpc-status", b"5"),
            (b"grpc-message", b"no%20such"),
        ]);
        let mut d = Decoder::default();
        let f = d.decode(&block).unwrap();
        assert_eq!(f.http, Some(200));
        assert_eq!(f.grpc_status.map(|s| s.as_bytes().to_vec()), Some(b"5".to_vec()));
        assert_eq!(Short::new(b"1234").as_bytes(), b"123");
        assert_eq!(f.grpc_message.as_deref(), Some(&b"no%20such"[..]));
        assert!(Decoder::default()
            .decode(&[0xff, 0xff, 0xff, 0xff, 0xff])
            .is_err());
        let big = vec![b'x'; 40_000];
        let block = enc.encode([(&b"a"[..], &big[..]), (b"b", &big[..])]);
        assert!(Decoder::default().decode(&block).unwrap_err().contains("limit"));
    }
}
