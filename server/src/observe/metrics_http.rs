//! The `--metrics-listen` endpoint: plain HTTP/1.1 serving the Prometheus
//! text format at `GET /metrics` (anything else is 404). Separate from the
//! gRPC port so that it can stay on a private address. Its own small
//! connection cap and timeouts ([`ScrapeLimits`]) keep idle or slow clients
//! from holding it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method as HttpMethod, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

use crate::observe::metrics::{Metrics, StateSample};

/// The content type of the Prometheus text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// How long a scrape connection may take to send a request's headers (and
/// may sit idle between requests) before it is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrape connections open at once; the next one is closed at once.
pub const MAX_SCRAPE_CONNECTIONS: usize = 16;
/// The longest a scrape connection stays open, busy or not (a client that
/// trickles a request body is cut here); a scraper simply reconnects.
pub const MAX_SCRAPE_CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// `bank_connections_refused_total`'s `listener` label for this endpoint.
const LISTENER: &str = "metrics";

/// Something that can sample the server's state at scrape time.
pub type Sampler = Arc<dyn Fn() -> StateSample + Send + Sync>;

/// The metrics listener's limits: a slow or idle client is cut at the
/// timeouts, and while `max_connections` are open the next is closed at once,
/// so no client holds `/metrics` from others for longer than the timeouts.
#[derive(Debug, Clone, Copy)]
pub struct ScrapeLimits {
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// See [`MAX_SCRAPE_CONNECTIONS`].
    pub max_connections: usize,
    /// See [`MAX_SCRAPE_CONNECTION_LIFETIME`].
    pub max_lifetime: Duration,
}

impl Default for ScrapeLimits {
    fn default() -> Self {
        ScrapeLimits {
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_connections: MAX_SCRAPE_CONNECTIONS,
            max_lifetime: MAX_SCRAPE_CONNECTION_LIFETIME,
        }
    }
}

/// Serves `/metrics` on `listener` until the task is dropped or aborted.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, sample: Sampler) {
    serve_limited(listener, metrics, sample, ScrapeLimits::default()).await;
}

/// [`serve`] under `limits`.
pub async fn serve_limited(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    sample: Sampler,
    limits: ScrapeLimits,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                warn!("metrics endpoint: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            debug!(
                "metrics endpoint: connection closed, {} open already",
                limits.max_connections
            );
            metrics.connection_refused(LISTENER, "max_connections");
            continue;
        };
        let (metrics, sample) = (Arc::clone(&metrics), Arc::clone(&sample));
        tokio::spawn(async move {
            serve_connection(stream, &metrics, sample, limits).await;
            drop(permit);
        });
    }
}

/// Serves one scrape connection until it closes or breaks a limit.
async fn serve_connection(stream: TcpStream, metrics: &Arc<Metrics>, sample: Sampler, limits: ScrapeLimits) {
    let answering = Arc::clone(metrics);
    let service = hyper::service::service_fn(move |req| {
        let response = answer(&req, &answering, &sample);
        async move { Ok::<_, Infallible>(response) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(TokioIo::new(stream), service);
    // Pinned here so that the socket closes only after the refusal is counted.
    let mut conn = std::pin::pin!(tokio::time::timeout(limits.max_lifetime, conn));
    match conn.as_mut().await {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.is_timeout() => {
            debug!("metrics endpoint: connection closed: {e}");
            metrics.connection_refused(LISTENER, "header_timeout");
        }
        Ok(Err(e)) => debug!("metrics endpoint: connection ended: {e}"),
        Err(_) => debug!("metrics endpoint: connection closed at its lifetime limit"),
    }
}

fn answer(req: &Request<Incoming>, metrics: &Metrics, sample: &Sampler) -> Response<Full<Bytes>> {
    let found = req.method() == HttpMethod::GET && req.uri().path() == "/metrics";
    let (status, body) = if found {
        (StatusCode::OK, metrics.render(sample()))
    } else {
        (StatusCode::NOT_FOUND, "not found: try GET /metrics\n".to_owned())
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(v) = CONTENT_TYPE.parse() {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    response
}
