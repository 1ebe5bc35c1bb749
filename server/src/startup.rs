//! Runs a server: the services of [`crate::rpc::router`] on the gRPC port (its
//! connections admitted and handshaken by [`crate::admission::conn`]), `/metrics` if asked, the token file
//! (reloaded on SIGHUP), and a graceful shutdown that stops taking calls and
//! lets in-flight ones finish.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic_health::ServingStatus;
use tracing::{info, warn};

use crate::admission::auth::Auth;
use crate::admission::conn;
use crate::admission::ops::Ops;
use crate::backend::api::Backend;
use crate::backend::ledger::{InjectedBug, LedgerObserver, Observer};
use crate::backend::pg::PgLedger;
use crate::config::ServerConfig;
use crate::observe::metrics::{Metrics, StateSample};
use crate::observe::metrics_http;
use crate::observe::telemetry::Telemetry;
use crate::rpc::router::{router, set_health};

pub use crate::rpc::router::BoxError;

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
    warn_if_exposed(&listeners.grpc, &config);
    let metrics = listeners
        .metrics
        .map(|l| Ok::<_, BoxError>((l, Arc::new(Metrics::new()?))));
    let metrics = metrics.transpose()?;
    if let Some((_, m)) = &metrics {
        config.ledger.observer = Observer::new(Arc::clone(m) as Arc<dyn LedgerObserver>);
    }
    // Files are read before the ledger is opened: a bad one changes nothing.
    let auth = load_auth(&config)?;
    let tls = tls_acceptor(&config)?;
    let (ops, durable) = open_ledger(&config).await?;
    if let Some((_, m)) = &metrics {
        time_gate_waits(&ops, m);
    }
    let ops = Arc::new(ops);
    let telemetry = metrics
        .as_ref()
        .map(|(_, m)| Telemetry::with_metrics(Arc::clone(m)));
    let conn_metrics = metrics.as_ref().map(|(_, m)| Arc::clone(m));
    let _metrics_task = metrics.map(|(l, m)| {
        AbortOnDrop(tokio::spawn(metrics_http::serve(
            l,
            m,
            sampler(&ops, durable.as_ref().and_then(|d| d.journal_stats())),
        )))
    });
    let _reload_task = auth.clone().and_then(reload_on_sighup);
    let (router, health) = router(Arc::clone(&ops), &config, telemetry.unwrap_or_default(), auth).await?;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let incoming = conn::incoming(listeners.grpc, connection_limits(&config), tls, conn_metrics);
    let server = router.serve_with_incoming_shutdown(incoming, async {
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

/// Reports how long ops wait at their accounts' gates (`bank_gate_wait_seconds`).
fn time_gate_waits(ops: &Ops, metrics: &Arc<Metrics>) {
    let metrics = Arc::clone(metrics);
    ops.gates()
        .observe_waits(Arc::new(move |wait| metrics.gate_waited(wait)));
}

/// The gRPC port's connection limits, as configured.
fn connection_limits(config: &ServerConfig) -> conn::Limits {
    conn::Limits {
        max_connections: config.max_connections,
        max_per_ip: config.max_connections_per_ip,
        handshake_timeout: config.handshake_timeout,
    }
}

/// The ops over the ledger the configuration names: in PostgreSQL
/// (`--database-url`, connected and migrated here), or in this process
/// (memory, or the journal of `--data-dir`, which is kept for the closing report).
async fn open_ledger(
    config: &ServerConfig,
) -> Result<(Ops, Option<crate::backend::durable::Durable>), BoxError> {
    let Some(settings) = config.database.clone() else {
        let durable = crate::backend::durable::open(
            &config.ledger,
            config.data_dir.as_deref(),
            config.journal_rollover_bytes,
        )
        .map_err(|e| format!("--data-dir: {e}"))?;
        return Ok((
            Ops::new(Arc::clone(&durable.ledger) as Arc<dyn Backend>),
            Some(durable),
        ));
    };
    let ledger_config = config.ledger.clone();
    let opened = tokio::task::spawn_blocking(move || PgLedger::open(&settings, &ledger_config)).await?;
    let (db, found) = opened?;
    let settings = config
        .database
        .as_ref()
        .map(|s| (s.pool_size, s.isolation.name()));
    let (pool, isolation) = settings.unwrap_or_default();
    info!(
        schema_found = found,
        schema = crate::backend::pg::SCHEMA_VERSION,
        pool,
        isolation,
        "ledger in PostgreSQL: every op is one transaction, committed before it is answered; other servers on the same database serve the same accounts"
    );
    Ok((Ops::new(Arc::new(db)), None))
}

/// The token file, if `--auth-tokens` is set.
fn load_auth(config: &ServerConfig) -> Result<Option<Arc<Auth>>, BoxError> {
    let Some(path) = &config.auth_tokens else {
        return Ok(None);
    };
    let auth = Auth::load(path).map_err(|e| format!("--auth-tokens: {e}"))?;
    info!(path = %path.display(), "bearer tokens loaded; SIGHUP reloads them");
    Ok(Some(Arc::new(auth)))
}

/// The TLS acceptor of `--tls-cert`/`--tls-key` (and `--tls-client-ca`), if set;
/// an error names each flag with its file, then what is wrong with which file.
fn tls_acceptor(config: &ServerConfig) -> Result<Option<tokio_rustls::TlsAcceptor>, String> {
    let Some(files) = &config.tls else {
        return Ok(None);
    };
    files.acceptor().map(Some).map_err(|e| {
        let ca = files.client_ca.as_ref();
        let ca = ca
            .map(|p| format!(", --tls-client-ca {}", p.display()))
            .unwrap_or_default();
        let (cert, key) = (files.cert.display(), files.key.display());
        format!("TLS files (--tls-cert {cert}, --tls-key {key}{ca}): {e}")
    })
}

/// Reloads the token file on every SIGHUP (a bad file keeps the old tokens).
/// SIGHUP is caught from the moment this returns, before any call is served.
#[cfg(unix)]
fn reload_on_sighup(auth: Arc<Auth>) -> Option<AbortOnDrop> {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        warn!("cannot catch SIGHUP: the token file will not be reloaded");
        return None;
    };
    Some(AbortOnDrop(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            match auth.reload() {
                Ok(principals) => info!(principals, "SIGHUP: bearer tokens reloaded"),
                Err(e) => warn!("SIGHUP: token file not reloaded, the old tokens stay: {e}"),
            }
        }
    })))
}

/// No SIGHUP here: the token file is read once.
#[cfg(not(unix))]
fn reload_on_sighup(_auth: Arc<Auth>) -> Option<AbortOnDrop> {
    None
}

/// Warns when anyone who can reach a non-loopback port may use the bank.
fn warn_if_exposed(listener: &TcpListener, config: &ServerConfig) {
    let exposed = listener.local_addr().is_ok_and(|a| !a.ip().is_loopback());
    if exposed && config.tls.is_none() && config.auth_tokens.is_none() {
        warn!("listening beyond loopback over plaintext with no tokens: anyone who reaches the port can move any account's money (see --tls-cert, --auth-tokens)");
    }
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
fn sampler(ops: &Arc<Ops>, journal: Option<crate::backend::durable::JournalStats>) -> metrics_http::Sampler {
    let ops = Arc::clone(ops);
    Arc::new(move || {
        let ledger = ops.backend().state();
        StateSample {
            open_accounts: ledger.open_accounts,
            inflight_calls: ops.drain().inflight(),
            remembered_request_ids: ledger.remembered_request_ids,
            admission_queued: ops.gates().admitted(),
            waiting_withdrawals: ledger.waiting_withdrawals,
            journal: journal.as_ref().map(|stats| stats()),
            db_pool: ledger.db_pool,
        }
    })
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
