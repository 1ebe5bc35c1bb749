//! The `--metrics-listen` endpoint: plain HTTP/1.1 serving the Prometheus
//! text format at `GET /metrics` (anything else is 404). Separate from the
//! gRPC port so that it can stay on a private address.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method as HttpMethod, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::{debug, warn};

use crate::metrics::{Metrics, StateSample};

/// The content type of the Prometheus text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// How long a scrape connection may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Scrape connections served at once; more wait in the kernel's backlog.
const MAX_SCRAPE_CONNECTIONS: usize = 16;

/// Something that can sample the server's state at scrape time.
pub type Sampler = Arc<dyn Fn() -> StateSample + Send + Sync>;

/// Serves `/metrics` on `listener` until the task is dropped or aborted.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, sample: Sampler) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPE_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                warn!("metrics endpoint: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (metrics, sample) = (Arc::clone(&metrics), Arc::clone(&sample));
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let response = answer(&req, &metrics, &sample);
                async move { Ok::<_, Infallible>(response) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                debug!("metrics endpoint: connection ended: {e}");
            }
            drop(permit);
        });
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
