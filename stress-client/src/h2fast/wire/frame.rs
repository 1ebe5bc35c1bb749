//! HTTP/2 frames (RFC 9113 §4 and §6) as this client writes and reads them:
//! the 9-byte frame header, the frame types, flags, settings and error
//! codes it knows, and writers for the control frames it sends. Frames are
//! written straight into the connection's output buffer; nothing here
//! allocates.

use bytes::{BufMut, BytesMut};

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Bytes of a frame header.
pub const HEADER_LEN: usize = 9;
/// The largest frame payload this client accepts (it never raises
/// SETTINGS_MAX_FRAME_SIZE) and the peer's limit until it says otherwise.
pub const DEFAULT_MAX_FRAME: usize = 16_384;
/// The largest frame payload any peer may allow (RFC 9113 §6.5.2).
pub const MAX_FRAME_LIMIT: usize = (1 << 24) - 1;
/// The highest stream id; a connection that used it up is replaced.
pub const MAX_STREAM_ID: u32 = (1 << 31) - 1;
/// Flow-control window every stream and connection starts with.
pub const DEFAULT_WINDOW: i64 = 65_535;
/// The largest flow-control window (RFC 9113 §6.9.1).
pub const MAX_WINDOW: i64 = (1 << 31) - 1;
/// The dynamic table size every HPACK context starts with.
pub const DEFAULT_TABLE_SIZE: usize = 4_096;

/// Frame types (RFC 9113 §6).
pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags.
pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// Settings identifiers (RFC 9113 §6.5.2).
pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
}

/// Error codes (RFC 9113 §7).
pub mod reason {
    pub const NO_ERROR: u32 = 0x0;
    pub const PROTOCOL_ERROR: u32 = 0x1;
    pub const INTERNAL_ERROR: u32 = 0x2;
    pub const FLOW_CONTROL_ERROR: u32 = 0x3;
    pub const SETTINGS_TIMEOUT: u32 = 0x4;
    pub const STREAM_CLOSED: u32 = 0x5;
    pub const FRAME_SIZE_ERROR: u32 = 0x6;
    pub const REFUSED_STREAM: u32 = 0x7;
    pub const CANCEL: u32 = 0x8;
    pub const COMPRESSION_ERROR: u32 = 0x9;
    pub const CONNECT_ERROR: u32 = 0xa;
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;
    pub const INADEQUATE_SECURITY: u32 = 0xc;
    pub const HTTP_1_1_REQUIRED: u32 = 0xd;
}

/// The name of an error code, for messages.
pub fn reason_name(code: u32) -> String {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    NAMES
        .get(code as usize)
        .map_or_else(|| format!("unknown error code {code:#x}"), |n| (*n).to_owned())
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    /// Parses the first [`HEADER_LEN`] bytes of `b` (the caller checks the length).
    pub fn parse(b: &[u8]) -> Head {
        Head {
            len: (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & MAX_STREAM_ID,
        }
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Writes a frame header. `len` must fit 24 bits (callers cut payloads at
/// the peer's frame size, itself at most [`MAX_FRAME_LIMIT`]).
pub fn put_head(out: &mut BytesMut, len: usize, kind: u8, flags: u8, stream: u32) {
    debug_assert!(len <= MAX_FRAME_LIMIT);
    let len = len.to_be_bytes();
    out.put_slice(&len[len.len() - 3..]);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32(stream & MAX_STREAM_ID);
}

/// A SETTINGS frame with `values`.
pub fn put_settings(out: &mut BytesMut, values: &[(u16, u32)]) {
    put_head(out, values.len() * 6, kind::SETTINGS, 0, 0);
    for &(id, value) in values {
        out.put_u16(id);
        out.put_u32(value);
    }
}

pub fn put_settings_ack(out: &mut BytesMut) {
    put_head(out, 0, kind::SETTINGS, flag::ACK, 0);
}

pub fn put_window_update(out: &mut BytesMut, stream: u32, increment: u32) {
    put_head(out, 4, kind::WINDOW_UPDATE, 0, stream);
    out.put_u32(increment & MAX_STREAM_ID);
}

pub fn put_rst_stream(out: &mut BytesMut, stream: u32, code: u32) {
    put_head(out, 4, kind::RST_STREAM, 0, stream);
    out.put_u32(code);
}

pub fn put_ping(out: &mut BytesMut, ack: bool, payload: [u8; 8]) {
    put_head(out, 8, kind::PING, if ack { flag::ACK } else { 0 }, 0);
    out.put_slice(&payload);
}

/// A GOAWAY: this client never accepts streams, so the last one is 0.
pub fn put_goaway(out: &mut BytesMut, code: u32) {
    put_head(out, 8, kind::GOAWAY, 0, 0);
    out.put_u32(0);
    out.put_u32(code);
}

/// The payload of a frame that may be PADDED, without its padding; `skip`
/// more bytes (the priority fields of a HEADERS frame) cut after the pad
/// length. `None` when the padding does not fit (a PROTOCOL_ERROR).
pub fn unpad(head: &Head, payload: &[u8], skip: usize) -> Option<(usize, usize)> {
    let (pad_len, start) = if head.has(flag::PADDED) {
        (usize::from(*payload.first()?), 1)
    } else {
        (0, 0)
    };
    let start = start + skip;
    let end = payload.len().checked_sub(pad_len)?;
    (start <= end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_header_parses_back() {
        let mut out = BytesMut::new();
        put_head(&mut out, 70_000, kind::HEADERS, flag::END_HEADERS, 7);
        assert_eq!(out.len(), HEADER_LEN);
        let head = Head::parse(&out);
        assert_eq!(
            head,
            Head {
                len: 70_000,
                kind: kind::HEADERS,
                flags: flag::END_HEADERS,
                stream: 7
            }
        );
        // The reserved bit is ignored on read.
        out[5] |= 0x80;
        assert_eq!(Head::parse(&out).stream, 7);
    }

    #[test]
    fn padding_is_cut_and_bad_padding_refused() {
        let head = |flags| Head {
            len: 0,
            kind: kind::DATA,
            flags,
            stream: 1,
        };
        assert_eq!(unpad(&head(0), b"abc", 0), Some((0, 3)));
        assert_eq!(unpad(&head(flag::PADDED), b"\x02abcXY", 0), Some((1, 4)));
        assert_eq!(unpad(&head(flag::PADDED), b"\x09ab", 0), None);
        assert_eq!(unpad(&head(flag::PADDED), b"", 0), None);
        assert_eq!(unpad(&head(flag::PRIORITY), b"12345ab", 5), Some((5, 7)));
        assert_eq!(unpad(&head(flag::PRIORITY), b"1234", 5), None);
    }

    #[test]
    fn reasons_have_names() {
        assert_eq!(reason_name(reason::REFUSED_STREAM), "REFUSED_STREAM");
        assert!(reason_name(0x77).contains("0x77"));
    }
}
