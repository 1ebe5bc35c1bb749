//! One fast-path HTTP/2 connection: a TCP connection (no delay) and an `h2`
//! client on it, with wide flow-control windows, whose connection task runs
//! on the runtime that opened it; plus the request heads of the calls the
//! load makes, built once (absolute URIs, content type, `te`, the deadline,
//! the run's metadata) and cloned per call.
//!
//! Like tonic's channels it reconnects lazily: a call that finds the
//! connection unusable (closed, reset, after a GOAWAY) waits for one new
//! connection, shared by every call that found the same one broken, and
//! fails with UNAVAILABLE only if that cannot be made. Attempts after a
//! failure are spaced out (see [`super::backoff`]).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, TE, USER_AGENT};
use http::{HeaderMap, Method, Request, Uri, Version};
use tokio::net::TcpStream;
use tonic::Status;

use super::backoff::Backoff;

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

/// The request heads of a connection's calls, built once.
#[derive(Debug)]
struct Heads {
    uris: [Uri; 4],
    /// Unary calls carry the deadline (`grpc-timeout`); the stream does not.
    unary: HeaderMap,
    stream: HeaderMap,
}

/// A fast-path connection; cheap to clone (one per worker).
#[derive(Clone)]
pub struct Conn {
    shared: Arc<Shared>,
}

/// What the clones of one connection share.
struct Shared {
    heads: Heads,
    authority: String,
    /// The live connection and how many times it was made.
    current: Mutex<Current>,
    /// Held while a new connection is being made; when the next may be tried.
    reconnecting: tokio::sync::Mutex<Backoff>,
}

/// A connection's sender of new streams, and which one it is.
#[derive(Clone)]
pub struct Current {
    pub generation: u64,
    pub send: SendRequest<Bytes>,
}

/// What every call of the run carries: the deadline and the metadata.
#[derive(Debug, Clone, Default)]
pub struct CallHeaders {
    pub timeout: Option<Duration>,
    pub metadata: Vec<(HeaderName, HeaderValue)>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("uri", &self.shared.heads.uris[0])
            .finish()
    }
}

impl Conn {
    /// The sender of new streams on the live connection.
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
            let send = match handshake(&shared.authority).await {
                Ok(send) => send,
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
                send,
            };
            Ok(current.clone())
        }
    }

    /// The request head of `rpc`.
    pub fn request(&self, rpc: Rpc) -> Request<()> {
        let heads = &self.shared.heads;
        let mut request = Request::new(());
        *request.method_mut() = Method::POST;
        *request.version_mut() = Version::HTTP_2;
        *request.uri_mut() = heads.uris[rpc as usize].clone();
        *request.headers_mut() = match rpc {
            Rpc::WithdrawStream => heads.stream.clone(),
            _ => heads.unary.clone(),
        };
        request
    }
}

/// Connects to `target` (`http://host:port`); the connection's task runs
/// on the current runtime.
pub async fn connect(target: &str, headers: &CallHeaders) -> Result<Conn, String> {
    let heads = heads(target, headers)?;
    let authority = heads.uris[0]
        .authority()
        .map(|a| a.as_str().to_owned())
        .ok_or_else(|| format!("--target {target:?} names no host"))?;
    let send = handshake(&authority)
        .await
        .map_err(|e| format!("cannot connect to {target}: {e}"))?;
    let shared = Shared {
        heads,
        authority,
        current: Mutex::new(Current { generation: 0, send }),
        reconnecting: tokio::sync::Mutex::new(Backoff::default()),
    };
    Ok(Conn {
        shared: Arc::new(shared),
    })
}

/// A TCP connection to `authority` and the HTTP/2 handshake on it, proven
/// by one PING answered (a server that does not speak HTTP/2 fails here,
/// not at the first call), within [`CONNECT_TIMEOUT`]; spawns the
/// connection's task.
async fn handshake(authority: &str) -> Result<SendRequest<Bytes>, String> {
    let handshake = async {
        let tcp = TcpStream::connect(authority).await.map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let (send, mut connection) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .handshake::<_, Bytes>(tcp)
            .await
            .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
        let ping = connection.ping_pong();
        let (ended_tx, ended) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let result = connection.await;
            if let Err(e) = &result {
                tracing::debug!("fast-path connection ended: {e}");
            }
            let _ = ended_tx.send(result);
        });
        let mut ping = ping.ok_or("HTTP/2 handshake: no PING handle")?;
        tokio::select! {
            pong = ping.ping(h2::Ping::opaque()) => pong
                .map(|_| send)
                .map_err(|e| format!("HTTP/2 handshake: {e}")),
            result = ended => Err(match result {
                Ok(Err(e)) => format!("HTTP/2 handshake: {e}"),
                _ => "HTTP/2 handshake: the server closed the connection".to_owned(),
            }),
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, handshake)
        .await
        .map_err(|_| format!("no HTTP/2 connection within {CONNECT_TIMEOUT:?}"))?
}

fn heads(target: &str, headers: &CallHeaders) -> Result<Heads, String> {
    let base = target.trim_end_matches('/');
    let uri = |rpc: Rpc| {
        format!("{base}{}", rpc.path())
            .parse::<Uri>()
            .map_err(|e| format!("bad --target {target:?}: {e}"))
    };
    let uris = [uri(RPCS[0])?, uri(RPCS[1])?, uri(RPCS[2])?, uri(RPCS[3])?];
    if uris[0].scheme_str() != Some("http") {
        return Err(format!(
            "the fast path speaks plaintext http:// only, not {target:?}"
        ));
    }
    let mut stream = HeaderMap::with_capacity(4 + headers.metadata.len());
    stream.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    stream.insert(TE, HeaderValue::from_static("trailers"));
    stream.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    for (key, value) in &headers.metadata {
        stream.insert(key.clone(), value.clone());
    }
    let mut unary = stream.clone();
    if let Some(timeout) = headers.timeout {
        unary.insert("grpc-timeout", grpc_timeout(timeout));
    }
    Ok(Heads { uris, unary, stream })
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

    #[test]
    fn heads_are_absolute_and_carry_the_metadata_and_deadline() {
        let headers = CallHeaders {
            timeout: Some(Duration::from_secs(2)),
            metadata: vec![(HeaderName::from_static("x-run"), HeaderValue::from_static("7"))],
        };
        let h = heads("http://127.0.0.1:9/", &headers).unwrap();
        assert_eq!(
            h.uris[Rpc::Deposit as usize],
            "http://127.0.0.1:9/bank.v1.Bank/Deposit"
        );
        assert_eq!(h.unary["grpc-timeout"], "2000000u");
        assert_eq!(h.unary["x-run"], "7");
        assert!(h.stream.get("grpc-timeout").is_none());
        assert_eq!(h.stream["te"], "trailers");
        assert!(heads("https://example.com", &headers).is_err());
        assert!(heads("http://bad host", &headers).is_err());
    }
}
