//! One fast-path HTTP/2 connection: a TCP or TLS connection ([`super::dial`]) and a
//! [`wire::Link`] on it, with wide flow-control windows, whose task runs on
//! the runtime that opened it; plus the request heads of the calls the load
//! makes, built once (path, authority, content type, `te`, the deadline,
//! the run's metadata) and sent as HPACK indices after the first call.
//!
//! Like tonic's channels it reconnects lazily: a call that finds the
//! connection unusable (closed, reset, after a GOAWAY) waits for one new
//! connection, shared by every call that found the same one broken, and
//! fails with UNAVAILABLE only if that cannot be made. Attempts after a
//! failure are spaced out (see [`super::backoff`]).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::Uri;
use tonic::Status;

use super::backoff::Backoff;
use super::dial::dial;
use super::wire::hpack::{Encoder, Field};
use super::wire::{driver, Link};

/// Receive window of each stream: answers never wait for a window update.
pub const STREAM_WINDOW: u32 = 1 << 20;
/// Receive window of the whole connection.
pub const CONNECTION_WINDOW: u32 = 16 << 20;
/// How long connecting and the HTTP/2 handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The `user-agent` of fast-path calls.
const USER_AGENT_VALUE: &str = concat!("bank-stress-client/", env!("CARGO_PKG_VERSION"), " (h2)");

/// The calls the load makes on the fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    Withdraw,
    Deposit,
    Transfer,
    WithdrawStream,
}

impl Rpc {
    fn path(self) -> &'static str {
        match self {
            Rpc::Withdraw => "/bank.v1.Bank/Withdraw",
            Rpc::Deposit => "/bank.v1.Bank/Deposit",
            Rpc::Transfer => "/bank.v1.Bank/Transfer",
            Rpc::WithdrawStream => "/bank.v1.Bank/WithdrawStream",
        }
    }
}

const RPCS: [Rpc; 4] = [Rpc::Withdraw, Rpc::Deposit, Rpc::Transfer, Rpc::WithdrawStream];

/// A fast-path connection; cheap to clone (one per worker).
#[derive(Clone)]
pub struct Conn {
    shared: Arc<Shared>,
}

/// What the clones of one connection share.
struct Shared {
    /// The request heads; each new connection starts from this (empty) table.
    heads: Encoder,
    target: String,
    authority: String,
    /// TLS for an `https://` target.
    tls: Option<crate::tls::Tls>,
    /// The live connection and how many times it was made.
    current: Mutex<Current>,
    /// Held while a new connection is being made; when the next may be tried.
    reconnecting: tokio::sync::Mutex<Backoff>,
}

/// A connection, and which one it is.
#[derive(Clone)]
pub struct Current {
    pub generation: u64,
    pub link: Arc<Link>,
}

impl Drop for Shared {
    /// The last handle is gone: the live connection ends once its streams have.
    fn drop(&mut self) {
        if let Ok(current) = self.current.get_mut() {
            current.link.shutdown();
        }
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
        self.shared
            .current
            .lock()
            .map(|c| c.clone())
            .map_err(|_| Status::internal("a fast-path connection's state was poisoned"))
    }

    /// A sender on a new connection, replacing `broken` (the generation
    /// found unusable); a caller that comes after another already replaced
    /// it gets that one. UNAVAILABLE when the server cannot be reached.
    pub fn reconnect(&self, broken: u64) -> impl Future<Output = Result<Current, Status>> + Send + 'static {
        let shared = Arc::clone(&self.shared);
        async move {
            let since = tokio::time::Instant::now();
            // Wait out the backoff beside the other callers, not behind them.
            let retry_at = shared.reconnecting.lock().await.retry_at();
            if let Some(at) = retry_at {
                tokio::time::sleep_until(at).await;
            }
            let mut backoff = shared.reconnecting.lock().await;
            let now = Conn {
                shared: Arc::clone(&shared),
            }
            .current()?;
            if now.generation != broken {
                return Ok(now);
            }
            if let Some(why) = backoff.failed_since(since) {
                return Err(Status::unavailable(why.to_owned()));
            }
            let link = match handshake(&shared.authority, &shared.heads, shared.tls.as_ref()).await {
                Ok(link) => link,
                Err(e) => {
                    let why = format!("cannot reconnect to {}: {e}", shared.authority);
                    backoff.failed(tokio::time::Instant::now(), why.clone());
                    return Err(Status::unavailable(why));
                }
            };
            backoff.succeeded();
            let mut current = shared
                .current
                .lock()
                .map_err(|_| Status::internal("a fast-path connection's state was poisoned"))?;
            *current = Current {
                generation: broken + 1,
                link,
            };
            Ok(current.clone())
        }
    }
}

/// Connects to `target` (`http://host:port`, or `https://` with
/// `headers.tls`); the connection's task runs on the current runtime.
pub async fn connect(target: &str, headers: &CallHeaders) -> Result<Conn, String> {
    let (heads, authority) = heads(target, headers)?;
    // TLS only for an https:// target (heads() refused any other scheme).
    let tls = headers.tls.clone().filter(|_| target.starts_with("https://"));
    let link = handshake(&authority, &heads, tls.as_ref())
        .await
        .map_err(|e| format!("cannot connect to {target}: {e}"))?;
    let shared = Shared {
        heads,
        target: target.to_owned(),
        authority,
        tls,
        current: Mutex::new(Current { generation: 0, link }),
        reconnecting: tokio::sync::Mutex::new(Backoff::default()),
    };
    Ok(Conn {
        shared: Arc::new(shared),
    })
}

/// A connection to `authority` ([`dial`]: TCP, TLS with `tls`) and the
/// HTTP/2 handshake on it, proven by one PING answered (a server that does
/// not speak HTTP/2 fails here, not at the first call), within
/// [`CONNECT_TIMEOUT`]; spawns the connection's task.
async fn handshake(
    authority: &str,
    heads: &Encoder,
    tls: Option<&crate::tls::Tls>,
) -> Result<Arc<Link>, String> {
    let handshake = async {
        let io = dial(authority, tls).await.map_err(|e| e.to_string())?;
        let link = Link::new(heads.clone());
        tokio::spawn(driver::drive(Arc::clone(&link), io));
        match std::future::poll_fn(|cx| link.poll_handshake(cx)).await {
            Ok(()) => Ok(link),
            Err(e) => Err(format!("HTTP/2 handshake: {e}")),
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, handshake)
        .await
        .map_err(|_| format!("no HTTP/2 connection within {CONNECT_TIMEOUT:?}"))?
}

/// The request heads of `target`'s calls, and its authority.
fn heads(target: &str, headers: &CallHeaders) -> Result<(Encoder, String), String> {
    let base = target.trim_end_matches('/');
    let uri = format!("{base}{}", Rpc::Withdraw.path())
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
    let prefix = uri.path().strip_suffix(Rpc::Withdraw.path()).unwrap_or("");
    let mut fields: Vec<Field> = RPCS
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
    let common: Vec<usize> = (RPCS.len()..fields.len()).collect();
    let timeout = headers.timeout.map(|t| {
        fields.push(Field::new("grpc-timeout", grpc_timeout(t).as_bytes()));
        fields.len() - 1
    });
    let block = |rpc: Rpc| {
        let mut ids = vec![rpc as usize];
        ids.extend(&common);
        // Unary calls carry the deadline (`grpc-timeout`); the stream does not.
        ids.extend(timeout.filter(|_| rpc != Rpc::WithdrawStream));
        ids
    };
    let blocks = RPCS.map(block);
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
    fn sent(encoder: &mut Encoder, rpc: Rpc) -> Vec<(String, String)> {
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
        let unary = sent(&mut e.clone(), Rpc::Deposit);
        let get = |list: &[(String, String)], name: &str| {
            list.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
        };
        assert_eq!(get(&unary, ":path").unwrap(), "/bank.v1.Bank/Deposit");
        assert_eq!(get(&unary, ":method").unwrap(), "POST");
        assert_eq!(get(&unary, ":authority").unwrap(), "127.0.0.1:9");
        assert_eq!(get(&unary, "grpc-timeout").unwrap(), "2000000u");
        assert_eq!(get(&unary, "x-run").unwrap(), "7");
        assert_eq!(get(&unary, "content-type").unwrap(), "application/grpc");
        let stream = sent(&mut e, Rpc::WithdrawStream);
        assert!(get(&stream, "grpc-timeout").is_none());
        assert_eq!(get(&stream, "te").unwrap(), "trailers");
        let (mut e, _) = heads("http://h:1/pre", &headers).unwrap();
        assert_eq!(
            get(&sent(&mut e, Rpc::Withdraw), ":path").unwrap(),
            "/pre/bank.v1.Bank/Withdraw"
        );
        assert!(heads("https://example.com", &headers).is_err());
        assert!(heads("http://bad host", &headers).is_err());
    }
}
