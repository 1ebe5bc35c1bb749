//! The status of a call on the fast path, read the way tonic's client reads
//! it, so a run reports the same codes and the same ops as unknown whichever
//! path carried them: `grpc-status` and `grpc-message` from the trailers (or
//! from the response headers of a trailers-only answer), the HTTP status when
//! there is none, and HTTP/2 resets and GOAWAYs by their reason code.

use http::{HeaderMap, StatusCode};
use tonic::{Code, Status};

/// The final status a header block carries: `None` without `grpc-status`,
/// `Some(Ok(()))` for OK, `Some(Err(status))` otherwise.
pub fn from_headers(headers: &HeaderMap) -> Option<Result<(), Status>> {
    let code = headers.get("grpc-status")?.as_bytes();
    if code == b"0" {
        return Some(Ok(()));
    }
    let code = Code::from_bytes(code);
    let message = headers
        .get("grpc-message")
        .map_or_else(String::new, |m| percent_decode(m.as_bytes()));
    Some(Err(Status::new(code, message)))
}

/// The status of an answer that ended without `grpc-status` (tonic's
/// mapping, from gRPC's http-grpc-status-mapping).
pub fn missing(http: StatusCode) -> Status {
    let code =
        match http {
            StatusCode::OK => return Status::unknown(
                "protocol error: missing grpc-status trailer, stream was terminated without a final status",
            ),
            StatusCode::BAD_REQUEST => Code::Internal,
            StatusCode::UNAUTHORIZED => Code::Unauthenticated,
            StatusCode::FORBIDDEN => Code::PermissionDenied,
            StatusCode::NOT_FOUND => Code::Unimplemented,
            StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => Code::Unavailable,
            _ => Code::Unknown,
        };
    Status::new(
        code,
        format!(
            "grpc-status header missing, mapped from HTTP status code {}",
            http.as_u16()
        ),
    )
}

/// An HTTP/2 error as a status: a reset or GOAWAY by its reason (gRPC's
/// PROTOCOL-HTTP2 table, as tonic maps it), a broken connection UNAVAILABLE.
pub fn from_h2(err: &h2::Error) -> Status {
    if err.is_io() {
        return Status::unavailable(format!("connection error: {err}"));
    }
    let code = match err.reason() {
        Some(h2::Reason::REFUSED_STREAM) => Code::Unavailable,
        Some(h2::Reason::CANCEL) => Code::Cancelled,
        Some(h2::Reason::ENHANCE_YOUR_CALM) => Code::ResourceExhausted,
        Some(h2::Reason::INADEQUATE_SECURITY) => Code::PermissionDenied,
        Some(
            h2::Reason::NO_ERROR
            | h2::Reason::PROTOCOL_ERROR
            | h2::Reason::INTERNAL_ERROR
            | h2::Reason::FLOW_CONTROL_ERROR
            | h2::Reason::SETTINGS_TIMEOUT
            | h2::Reason::FRAME_SIZE_ERROR
            | h2::Reason::COMPRESSION_ERROR
            | h2::Reason::CONNECT_ERROR,
        ) => Code::Internal,
        _ => Code::Unknown,
    };
    Status::new(code, format!("h2 protocol error: {err}"))
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
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn every_grpc_status_code_maps_to_its_code_and_the_message_is_decoded() {
        assert!(from_headers(&headers(&[])).is_none());
        assert!(matches!(
            from_headers(&headers(&[("grpc-status", "0")])),
            Some(Ok(()))
        ));
        for n in 1..=16 {
            let mut map = HeaderMap::new();
            map.insert("grpc-status", HeaderValue::from(n));
            map.insert(
                "grpc-message",
                HeaderValue::from_static("no%20such%20account%3A%20x"),
            );
            let status = from_headers(&map).unwrap().unwrap_err();
            assert_eq!(i32::from(status.code()), n);
            assert_eq!(status.message(), "no such account: x");
        }
        let junk = from_headers(&headers(&[("grpc-status", "banana"), ("grpc-message", "%zz%4")]));
        let junk = junk.unwrap().unwrap_err();
        assert_eq!((junk.code(), junk.message()), (Code::Unknown, "%zz%4"));
    }

    #[test]
    fn an_answer_without_grpc_status_maps_its_http_status() {
        let cases = [
            (StatusCode::OK, Code::Unknown),
            (StatusCode::BAD_REQUEST, Code::Internal),
            (StatusCode::UNAUTHORIZED, Code::Unauthenticated),
            (StatusCode::FORBIDDEN, Code::PermissionDenied),
            (StatusCode::NOT_FOUND, Code::Unimplemented),
            (StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable),
            (StatusCode::IM_A_TEAPOT, Code::Unknown),
        ];
        for (http, code) in cases {
            assert_eq!(missing(http).code(), code, "{http}");
        }
    }

    #[test]
    fn resets_map_by_reason() {
        let cases = [
            (h2::Reason::REFUSED_STREAM, Code::Unavailable),
            (h2::Reason::CANCEL, Code::Cancelled),
            (h2::Reason::ENHANCE_YOUR_CALM, Code::ResourceExhausted),
            (h2::Reason::INADEQUATE_SECURITY, Code::PermissionDenied),
            (h2::Reason::NO_ERROR, Code::Internal),
            (h2::Reason::PROTOCOL_ERROR, Code::Internal),
            (h2::Reason::from(0x77), Code::Unknown),
        ];
        for (reason, code) in cases {
            assert_eq!(from_h2(&h2::Error::from(reason)).code(), code, "{reason:?}");
        }
    }
}
