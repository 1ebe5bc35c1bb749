//! One fast-path HTTP/2 connection: a TCP or TLS connection ([`super::dial`]) and a
//! [`wire::Link`] on it, with wide flow-control windows, whose task runs on
//! the runtime that opened it; plus the request heads of the calls the load
//! makes, built once (path, authority, content type, `te`, the deadline,
//! the run's metadata) and sent as HPACK indices after the first call.
//!
//! Like tonic's channels it reconnects by itself: each connection slot has
//! a task ([`super::reconnect`]) that makes the new connection when the
//! live one takes no new streams (closed, reset, after a GOAWAY — the
//! streams it still finishes stay on the old one); a call that finds the
//! connection unusable waits for that one attempt, shared by every call,
//! and fails with UNAVAILABLE only if it fails. Attempts after a failure
//! are spaced out (see [`super::backoff`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::Uri;
use tonic::Status;

use super::dial::dial;
pub use super::reconnect::Current;
use super::reconnect::Slot;
pub use super::wire::call::FastCall;
use super::wire::hpack::{Encoder, Field};
use super::wire::{driver, Link};

/// How long connecting and the HTTP/2 handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The `user-agent` of fast-path calls.
const USER_AGENT_VALUE: &str = concat!("bank-stress-client/", env!("CARGO_PKG_VERSION"), " (h2)");

/// A fast-path connection; cheap to clone (one per worker).
#[derive(Clone)]
pub struct Conn {
    shared: Arc<Shared>,
}

/// What the clones of one connection share.
struct Shared {
    target: String,
    /// The live connection, replaced by the slot's task.
    slot: Arc<Slot>,
}

impl Drop for Shared {
    /// The last handle is gone: the live connection ends once its streams
    /// have, and no new one is made.
    fn drop(&mut self) {
        self.slot.stop();
    }
}

/// What every call of the run carries: the deadline and the metadata; and
/// the TLS of `https://` targets.
#[derive(Debug, Clone, Default)]
pub struct CallHeaders {
    pub timeout: Option<Duration>,
    pub metadata: Vec<(HeaderName, HeaderValue)>,
    pub tls: Option<crate::tls::Tls>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("target", &self.shared.target)
            .finish()
    }
}

impl Conn {
    /// The live connection.
    pub fn current(&self) -> Result<Current, Status> {
        Ok(self.shared.slot.current())
    }

    /// A newer connection than `broken` (the generation found unusable),
    /// once the connection's task has made it; UNAVAILABLE when its
    /// attempt fails. A caller may stop waiting at any time: the attempt
    /// goes on.
    pub fn reconnect(&self, broken: u64) -> impl Future<Output = Result<Current, Status>> + Send + 'static {
        self.shared.slot.newer_than(broken)
    }
}

/// Connects to `target` (`http://host:port`, or `https://` with
/// `headers.tls`); the connection's task and its reconnect task run on the
/// current runtime.
pub async fn connect(target: &str, headers: &CallHeaders) -> Result<Conn, String> {
    let (heads, authority) = heads(target, headers)?;
    // TLS only for an https:// target (heads() refused any other scheme).
    let tls = headers.tls.clone().filter(|_| target.starts_with("https://"));
    let link = handshake(&authority, &heads, tls.as_ref())
        .await
        .map_err(|e| format!("cannot connect to {target}: {e}"))?;
    let redial = move || {
        let (authority, heads, tls) = (authority.clone(), heads.clone(), tls.clone());
        async move {
            handshake(&authority, &heads, tls.as_ref())
                .await
                .map_err(|e| format!("cannot reconnect to {authority}: {e}"))
        }
    };
    let shared = Shared {
        target: target.to_owned(),
        slot: Slot::start(link, redial),
    };
    Ok(Conn {
        shared: Arc::new(shared),
    })
}

/// A connection to `authority` ([`dial`]: TCP, TLS with `tls`) and the
/// HTTP/2 handshake on it, proven by one PING answered (a server that does
/// not speak HTTP/2 fails here, not at the first call), within
/// [`CONNECT_TIMEOUT`]; spawns the connection's task. A handshake that
/// fails or is dropped half-way ends the connection it made: nothing is
/// left open behind it.
async fn handshake(
    authority: &str,
    heads: &Encoder,
    tls: Option<&crate::tls::Tls>,
) -> Result<Arc<Link>, String> {
    let handshake = async {
        let io = dial(authority, tls).await.map_err(|e| e.to_string())?;
        let link = Link::new(heads.clone());
        tokio::spawn(driver::drive(Arc::clone(&link), io));
        let unfinished = Unfinished(Some(Arc::clone(&link)));
        std::future::poll_fn(|cx| link.poll_handshake(cx))
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
        unfinished.done();
        Ok(link)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, handshake)
        .await
        .map_err(|_| format!("no HTTP/2 connection within {CONNECT_TIMEOUT:?}"))?
}

/// A connection whose handshake has not finished: ended if dropped so.
struct Unfinished(Option<Arc<Link>>);

impl Unfinished {
    fn done(mut self) {
        self.0 = None;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(link) = self.0.take() {
            link.fail(Status::unavailable(
                "connection error: the handshake was not finished",
            ));
        }
    }
}

/// The request heads of `target`'s calls, and its authority.
fn heads(target: &str, headers: &CallHeaders) -> Result<(Encoder, String), String> {
    let base = target.trim_end_matches('/');
    let uri = format!("{base}{}", FastCall::Withdraw.path())
        .parse::<Uri>()
        .map_err(|e| format!("bad --target {target:?}: {e}"))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") if headers.tls.is_some() => true,
        _ => {
            return Err(format!(
                "the fast path speaks http:// and https:// (with TLS set up), not {target:?}"
            ))
        }
    };
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .ok_or_else(|| format!("--target {target:?} names no host"))?;
    // Paths under the target's own path prefix, if it has one.
    let prefix = uri.path().strip_suffix(FastCall::Withdraw.path()).unwrap_or("");
    let mut fields: Vec<Field> = FastCall::ALL
        .iter()
        .map(|rpc| Field::new(":path", format!("{prefix}{}", rpc.path()).as_bytes()))
        .collect();
    fields.push(Field::new(":authority", authority.as_bytes()));
    fields.push(Field::new("content-type", b"application/grpc"));
    fields.push(Field::new("te", b"trailers"));
    fields.push(Field::new("user-agent", USER_AGENT_VALUE.as_bytes()));
    for (key, value) in &headers.metadata {
        fields.push(Field::new(key.as_str(), value.as_bytes()));
    }
    let common: Vec<usize> = (FastCall::ALL.len()..fields.len()).collect();
    let timeout = headers.timeout.map(|t| {
        fields.push(Field::new("grpc-timeout", grpc_timeout(t).as_bytes()));
        fields.len() - 1
    });
    let block = |rpc: FastCall| {
        let mut ids = vec![rpc as usize];
        ids.extend(&common);
        // Unary calls carry the deadline (`grpc-timeout`); the stream does not.
        ids.extend(timeout.filter(|_| rpc != FastCall::WithdrawStream));
        ids
    };
    let blocks = FastCall::ALL.map(block);
    let encoder = Encoder::new(fields, blocks);
    Ok((if https { encoder.https() } else { encoder }, authority))
}

/// A `grpc-timeout` value: the finest unit whose count fits the 8 digits
/// the spec allows (as tonic writes it).
pub fn grpc_timeout(timeout: Duration) -> HeaderValue {
    const MAX_DIGITS_VALUE: u128 = 99_999_999;
    let nanos = timeout.as_nanos();
    let units: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    let (count, unit) = units
        .iter()
        .map(|&(per, unit)| (nanos / per, unit))
        .find(|&(count, _)| count <= MAX_DIGITS_VALUE)
        .unwrap_or((MAX_DIGITS_VALUE, 'H'));
    HeaderValue::try_from(format!("{count}{unit}")).unwrap_or(HeaderValue::from_static("99999999H"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_use_the_finest_unit_that_fits() {
        let cases = [
            (Duration::from_millis(1), "1000000n"),
            (Duration::from_secs(10), "10000000u"),
            (Duration::from_secs(1000), "1000000m"),
            (Duration::from_secs(100_000_000), "1666666M"),
        ];
        for (d, want) in cases {
            assert_eq!(grpc_timeout(d), want, "{d:?}");
        }
    }

    /// The fields of one call's header block, as a server decodes them.
    fn sent(encoder: &mut Encoder, rpc: FastCall) -> Vec<(String, String)> {
        let mut block = bytes::BytesMut::new();
        encoder.encode(rpc, &mut block);
        let mut decoder = loona_hpack::Decoder::new();
        let list = decoder.decode(&block).expect("a valid block");
        list.into_iter()
            .map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap()))
            .collect()
    }

    #[test]
    fn heads_carry_path_authority_metadata_and_the_deadline() {
        let headers = CallHeaders {
            timeout: Some(Duration::from_secs(2)),
            metadata: vec![(HeaderName::from_static("x-run"), HeaderValue::from_static("7"))],
            tls: None,
        };
        let (mut e, authority) = heads("http://127.0.0.1:9/", &headers).unwrap();
        assert_eq!(authority, "127.0.0.1:9");
        let unary = sent(&mut e.clone(), FastCall::Deposit);
        let get = |list: &[(String, String)], name: &str| {
            list.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
        };
        assert_eq!(get(&unary, ":path").unwrap(), "/bank.v1.Bank/Deposit");
        assert_eq!(get(&unary, ":method").unwrap(), "POST");
        assert_eq!(get(&unary, ":authority").unwrap(), "127.0.0.1:9");
        assert_eq!(get(&unary, "grpc-timeout").unwrap(), "2000000u");
        assert_eq!(get(&unary, "x-run").unwrap(), "7");
        assert_eq!(get(&unary, "content-type").unwrap(), "application/grpc");
        let stream = sent(&mut e, FastCall::WithdrawStream);
        assert!(get(&stream, "grpc-timeout").is_none());
        assert_eq!(get(&stream, "te").unwrap(), "trailers");
        let (mut e, _) = heads("http://h:1/pre", &headers).unwrap();
        assert_eq!(
            get(&sent(&mut e, FastCall::Withdraw), ":path").unwrap(),
            "/pre/bank.v1.Bank/Withdraw"
        );
        assert!(heads("https://example.com", &headers).is_err());
        assert!(heads("http://bad host", &headers).is_err());
    }
}
