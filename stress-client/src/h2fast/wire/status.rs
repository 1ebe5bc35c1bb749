//! The status of a call on the fast path, read the way tonic's client reads
//! it, so a run reports the same codes and the same ops as unknown whichever
//! path carried them: `grpc-status` and `grpc-message` from the trailers (or
//! from the response headers of a trailers-only answer), the HTTP status when
//! there is none, and HTTP/2 resets and GOAWAYs by their reason code.

use tonic::{Code, Status};

use super::frame::{reason, reason_name};
use super::hpack::Fields;

/// The final status a header block carries: `None` without `grpc-status`,
/// `Some(Ok(()))` for OK, `Some(Err(status))` otherwise.
pub fn from_fields(fields: &Fields) -> Option<Result<(), Status>> {
    let code = fields.grpc_status.as_ref()?.as_bytes();
    if code == b"0" {
        return Some(Ok(()));
    }
    let code = Code::from_bytes(code);
    let message = fields
        .grpc_message
        .as_deref()
        .map_or_else(String::new, percent_decode);
    Some(Err(Status::new(code, message)))
}

/// The status of an answer that ended without `grpc-status` (tonic's
/// mapping, from gRPC's http-grpc-status-mapping); `http` is `:status`.
pub fn missing(http: Option<u16>) -> Status {
    let Some(http) = http else {
        return Status::internal("protocol error: an answer without :status");
    };
    let code =
        match http {
            200 => return Status::unknown(
                "protocol error: missing grpc-status trailer, stream was terminated without a final status",
            ),
            400 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502 | 503 | 504 => Code::Unavailable,
            _ => Code::Unknown,
        };
    Status::new(
        code,
        format!("grpc-status header missing, mapped from HTTP status code {http}"),
    )
}

/// A reset or GOAWAY as a status, by its error code (gRPC's
/// PROTOCOL-HTTP2 table, as tonic maps it).
pub fn from_reason(code: u32, what: &str) -> Status {
    let grpc = match code {
        reason::REFUSED_STREAM => Code::Unavailable,
        reason::CANCEL => Code::Cancelled,
        reason::ENHANCE_YOUR_CALM => Code::ResourceExhausted,
        reason::INADEQUATE_SECURITY => Code::PermissionDenied,
        reason::NO_ERROR
        | reason::PROTOCOL_ERROR
        | reason::INTERNAL_ERROR
        | reason::FLOW_CONTROL_ERROR
        | reason::SETTINGS_TIMEOUT
        | reason::FRAME_SIZE_ERROR
        | reason::COMPRESSION_ERROR
        | reason::CONNECT_ERROR => Code::Internal,
        _ => Code::Unknown,
    };
    Status::new(grpc, format!("h2 protocol error: {what} ({})", reason_name(code)))
}

/// A stream the server reset.
pub fn from_reset(code: u32) -> Status {
    from_reason(code, "the server reset the stream")
}

/// `grpc-message` is percent-encoded; bytes that do not decode stay as they are.
fn percent_decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            raw[i],
            raw.get(i + 1).copied().and_then(hex),
            raw.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2fast::wire::hpack::Short;

    fn fields(status: Option<&str>, message: Option<&str>) -> Fields {
        Fields {
            http: Some(200),
            grpc_status: status.map(|s| Short::new(s.as_bytes())),
            grpc_message: message.map(|s| s.as_bytes().to_vec()),
        }
    }

    #[test]
    fn every_grpc_status_code_maps_to_its_code_and_the_message_is_decoded() {
        assert!(from_fields(&fields(None, None)).is_none());
        assert!(matches!(from_fields(&fields(Some("0"), None)), Some(Ok(()))));
        for n in 1..=16 {
            let f = fields(Some(&n.to_string()), Some("no%20such%20account%3A%20x"));
            let status = from_fields(&f).unwrap().unwrap_err();
            assert_eq!(i32::from(status.code()), n);
            assert_eq!(status.message(), "no such account: x");
        }
        for long in ["banana", "123", "0000"] {
            let junk = from_fields(&fields(Some(long), None)).unwrap().unwrap_err();
            assert_eq!(junk.code(), Code::Unknown, "{long}");
        }
        let junk = from_fields(&fields(Some("banana"), Some("%zz%4")));
        let junk = junk.unwrap().unwrap_err();
        assert_eq!((junk.code(), junk.message()), (Code::Unknown, "%zz%4"));
    }

    #[test]
    fn an_answer_without_grpc_status_maps_its_http_status() {
        let cases = [
            (200, Code::Unknown),
            (400, Code::Internal),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::Unimplemented),
            (503, Code::Unavailable),
            (418, Code::Unknown),
        ];
        for (http, code) in cases {
            assert_eq!(missing(Some(http)).code(), code, "{http}");
        }
        assert_eq!(missing(None).code(), Code::Internal);
    }

    #[test]
    fn resets_map_by_reason() {
        let cases = [
            (reason::REFUSED_STREAM, Code::Unavailable),
            (reason::CANCEL, Code::Cancelled),
            (reason::ENHANCE_YOUR_CALM, Code::ResourceExhausted),
            (reason::INADEQUATE_SECURITY, Code::PermissionDenied),
            (reason::NO_ERROR, Code::Internal),
            (reason::PROTOCOL_ERROR, Code::Internal),
            (0x77, Code::Unknown),
        ];
        for (code, grpc) in cases {
            let status = from_reset(code);
            assert_eq!(status.code(), grpc, "{code}");
            assert!(status.message().contains("h2 protocol error"));
        }
    }
}
