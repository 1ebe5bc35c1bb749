//! Wires a server together: the bank service with its limits, gRPC health
//! (SERVING for `bank.v1.Bank` and ""), reflection v1 and v1alpha, and a
//! graceful shutdown that stops taking calls and lets in-flight ones finish.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bank::v1::bank_server::BankServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;
use tracing::{info, warn};

use crate::config::ServerConfig;
use crate::ledger::{InjectedBug, Ledger, LedgerObserver, Observer};
use crate::metrics::{Metrics, StateSample};
use crate::metrics_http;
use crate::ops::Ops;
use crate::service::BankService;
use crate::telemetry::Telemetry;

/// Any startup or transport failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the server listens: the gRPC port and, optionally, `/metrics`.
#[derive(Debug)]
pub struct Listeners {
    /// The bank.v1 (and health, reflection) port.
    pub grpc: TcpListener,
    /// The Prometheus endpoint (`--metrics-listen`), if any.
    pub metrics: Option<TcpListener>,
}

/// Serves the bank on `listener` until `shutdown` resolves, then drains for
/// at most `config.shutdown_grace` and returns.
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BoxError> {
    let listeners = Listeners {
        grpc: listener,
        metrics: None,
    };
    serve(listeners, config, shutdown).await
}

/// [`run`], with metrics served on `listeners.metrics` if given.
pub async fn serve(
    listeners: Listeners,
    mut config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BoxError> {
    warn_if_unsafe(&config);
    let metrics = listeners
        .metrics
        .map(|l| Ok::<_, BoxError>((l, Arc::new(Metrics::new()?))))
        .transpose()?;
    if let Some((_, m)) = &metrics {
        config.ledger.observer = Observer::new(Arc::clone(m) as Arc<dyn LedgerObserver>);
    }
    let ops = Arc::new(Ops::new(Arc::new(Ledger::new(config.ledger.clone()))));
    let telemetry = metrics
        .as_ref()
        .map(|(_, m)| Telemetry::with_metrics(Arc::clone(m)))
        .unwrap_or_default();
    let _metrics_task =
        metrics.map(|(l, m)| AbortOnDrop(tokio::spawn(metrics_http::serve(l, m, sampler(&ops)))));
    let listener = listeners.grpc;
    let service = BankService::new(Arc::clone(&ops), config.stream_response_buffer).with_telemetry(telemetry);
    let bank = BankServer::new(service)
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(config.max_message_bytes);
    let (health, health_service) = tonic_health::server::health_reporter();
    set_health(&health, ServingStatus::Serving).await;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = Server::builder()
        .max_concurrent_streams(config.max_concurrent_streams_per_connection)
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(bank)
        // `serve_with_incoming` ignores the builder's TCP options: without
        // TCP_NODELAY small replies wait for delayed ACKs (~40 ms tails).
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), async {
            let _ = stop_rx.await;
        });
    let mut server = Box::pin(server);
    tokio::select! {
        result = &mut server => return result.map_err(Into::into),
        () = shutdown => {}
    }
    info!(grace = ?config.shutdown_grace, "shutting down: refusing new calls, draining in-flight ones");
    ops.drain().begin();
    set_health(&health, ServingStatus::NotServing).await;
    drain(server, stop_tx, &ops, config.shutdown_grace).await
}

/// Keeps the transport up while in-flight calls finish, so that new calls
/// hear UNAVAILABLE from the service rather than a dropped connection; then
/// stops the transport. All within `grace`.
async fn drain(
    mut server: Pin<Box<impl Future<Output = Result<(), tonic::transport::Error>>>>,
    stop: oneshot::Sender<()>,
    ops: &Ops,
    grace: Duration,
) -> Result<(), BoxError> {
    let deadline = tokio::time::Instant::now() + grace;
    tokio::select! {
        result = &mut server => return result.map_err(Into::into),
        _ = tokio::time::timeout_at(deadline, ops.drain().drained()) => {}
    }
    let _ = stop.send(());
    match tokio::time::timeout_at(deadline, server).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => {
            let inflight = ops.drain().inflight();
            warn!(
                inflight,
                "shutdown grace period over; returning with calls still in flight"
            );
            Ok(())
        }
    }
}

/// Aborts the task when dropped (the metrics endpoint ends with the server).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Samples the server's state for a scrape.
fn sampler(ops: &Arc<Ops>) -> metrics_http::Sampler {
    let ops = Arc::clone(ops);
    Arc::new(move || StateSample {
        open_accounts: ops.ledger().account_count(),
        inflight_calls: ops.drain().inflight(),
        ..StateSample::default()
    })
}

/// Reflection over the bank and health descriptors (v1 and v1alpha share it).
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(bank::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status(bank::SERVICE_NAME, status).await;
    health.set_service_status("", status).await;
}

fn warn_if_unsafe(config: &ServerConfig) {
    if config.ledger.unsafe_no_lock {
        warn!("!!! --unsafe-no-lock: withdrawals read, sleep and write back WITHOUT the lock !!!");
        warn!("!!! this server WILL lose updates and overdraw accounts; it exists to demo the race !!!");
    }
    let bug = config.ledger.inject_bug;
    if bug != InjectedBug::None {
        warn!("!!! --inject-bug {}: {} !!!", bug.name(), bug.about());
        warn!("!!! this server is broken ON PURPOSE (bug zoo); its answers are NOT to be trusted !!!");
    }
}
