//! The server's Prometheus metrics. The names are a contract (README,
//! "Running it for real"): dashboards and CI read them.
//!
//! Counters and histograms are updated as calls finish ([`crate::observe::telemetry`]);
//! gauges of the server's state (open accounts, calls in flight, ...) are
//! sampled when `/metrics` is scraped ([`crate::observe::metrics_http`]).
//!
//! Prometheus conventions: durations in seconds, counters end in `_total`,
//! every family has `# HELP` and `# TYPE`, and every labelled series the
//! server can produce is there at 0 from the start (a rate over an error
//! counter works from its first error, and an absent series means "never
//! possible", not "not yet").

use std::time::Duration;

use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, Opts, Registry, TextEncoder,
};

/// Latency buckets of an RPC, in seconds: 50 µs to about 26 s.
const LATENCY_BUCKETS: (f64, f64, usize) = (0.000_05, 2.0, 20);
/// Lock wait and hold buckets, in seconds: 1 µs to about 16 s.
const LOCK_BUCKETS: (f64, f64, usize) = (0.000_001, 4.0, 13);

/// The bank.v1 methods (the `method` label), as the proto names them.
pub const METHODS: [&str; 7] = [
    "OpenAccount",
    "GetBalance",
    "Deposit",
    "Withdraw",
    "WithdrawStream",
    "Transfer",
    "GetOperation",
];

/// Every error code a bank.v1 call can be answered with (the `code` label,
/// tonic's name of the code): the statuses of `crate::rpc::status`, and
/// `Cancelled` for a call whose client left.
pub const ERROR_CODES: [&str; 11] = [
    "InvalidArgument",
    "NotFound",
    "AlreadyExists",
    "FailedPrecondition",
    "ResourceExhausted",
    "Aborted",
    "Unavailable",
    "Internal",
    "Unauthenticated",
    "PermissionDenied",
    "Cancelled",
];

/// The outcomes each money-moving method can apply (`bank_operations_total`).
const OUTCOMES: [(&str, &[&str]); 4] = [
    ("Deposit", &["approved"]),
    ("Withdraw", &["approved", "insufficient_funds"]),
    ("WithdrawStream", &["approved", "insufficient_funds"]),
    ("Transfer", &["approved", "insufficient_funds"]),
];

/// The reasons each listener refuses a connection (`bank_connections_refused_total`).
const REFUSALS: [(&str, &[&str]); 2] = [
    ("grpc", &["handshake_timeout", "handshake_failed", "per_ip"]),
    ("metrics", &["max_connections", "header_timeout"]),
];

/// The server's state, sampled at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct StateSample {
    pub open_accounts: usize,
    pub remembered_request_ids: usize,
    pub inflight_calls: usize,
    pub admission_queued: usize,
    pub waiting_withdrawals: usize,
    /// With `--data-dir`: journal syncs and records written since start.
    pub journal: Option<(u64, u64)>,
    /// With `--database-url`: pooled connections (idle, in use).
    pub db_pool: Option<(usize, usize)>,
}

/// Every metric the server exports, in one registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    operations: IntCounterVec,
    rpc_errors: IntCounterVec,
    rpc_latency: HistogramVec,
    connections_refused: IntCounterVec,
    lock_wait: Histogram,
    lock_hold: Histogram,
    gate_wait: Histogram,
    syncs: IntCounter,
    synced_records: IntCounter,
    open_accounts: IntGauge,
    request_ids: IntGauge,
    inflight: IntGauge,
    queued: IntGauge,
    waiting: IntGauge,
    db: super::db_metrics::DbMetrics,
}

fn buckets((start, factor, count): (f64, f64, usize)) -> Vec<f64> {
    // The constants above are valid; an empty list falls back to the defaults.
    exponential_buckets(start, factor, count).unwrap_or_default()
}

fn histogram(name: &str, help: &str, b: (f64, f64, usize)) -> prometheus::Result<Histogram> {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets(b)))
}

fn gauge(name: &str, help: &str) -> prometheus::Result<IntGauge> {
    IntGauge::new(name, help)
}

impl Metrics {
    /// A registry with every metric, plus the process collector on Linux.
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let db = super::db_metrics::DbMetrics::register(&registry)?;
        let m = Metrics {
            registry,
            db,
            operations: IntCounterVec::new(
                Opts::new(
                    "bank_operations_total",
                    "Money-moving operations applied, by outcome (replays are not counted).",
                ),
                &["method", "outcome"],
            )?,
            rpc_errors: IntCounterVec::new(
                Opts::new(
                    "bank_rpc_errors_total",
                    "bank.v1 calls (or stream messages) answered with an error status.",
                ),
                &["method", "code"],
            )?,
            rpc_latency: HistogramVec::new(
                HistogramOpts::new(
                    "bank_rpc_duration_seconds",
                    "Server-side latency of bank.v1 calls (per message for WithdrawStream).",
                )
                .buckets(buckets(LATENCY_BUCKETS)),
                &["method"],
            )?,
            connections_refused: IntCounterVec::new(
                Opts::new(
                    "bank_connections_refused_total",
                    "Connections closed before they were served, by listener (grpc, metrics) and reason.",
                ),
                &["listener", "reason"],
            )?,
            lock_wait: histogram(
                "bank_lock_wait_seconds",
                "Time spent waiting for an account's lock.",
                LOCK_BUCKETS,
            )?,
            lock_hold: histogram(
                "bank_lock_hold_seconds",
                "Time an account's lock was held.",
                LOCK_BUCKETS,
            )?,
            gate_wait: histogram(
                "bank_gate_wait_seconds",
                "Time an operation waited at its account's admission gate before it was admitted to run.",
                LOCK_BUCKETS,
            )?,
            syncs: IntCounter::new(
                "bank_ledger_syncs_total",
                "Durable ledger syncs (0 without --data-dir).",
            )?,
            synced_records: IntCounter::new(
                "bank_ledger_synced_records_total",
                "Records made durable by those syncs (records / syncs = mean batch size).",
            )?,
            open_accounts: gauge("bank_open_accounts", "Accounts open now.")?,
            request_ids: gauge(
                "bank_remembered_request_ids",
                "Request ids remembered now, over all accounts.",
            )?,
            inflight: gauge(
                "bank_inflight_calls",
                "bank.v1 calls (and stream messages) in flight now.",
            )?,
            queued: gauge(
                "bank_admission_queue_depth",
                "Operations admitted at the accounts' gates now (queued or running).",
            )?,
            waiting: gauge(
                "bank_waiting_withdrawals",
                "Withdrawals parked waiting for funds now (futures, not threads).",
            )?,
        };
        m.register_all()?;
        m.zero_all();
        Ok(m)
    }

    fn register_all(&self) -> prometheus::Result<()> {
        let r = &self.registry;
        r.register(Box::new(self.operations.clone()))?;
        r.register(Box::new(self.rpc_errors.clone()))?;
        r.register(Box::new(self.rpc_latency.clone()))?;
        r.register(Box::new(self.connections_refused.clone()))?;
        r.register(Box::new(self.lock_wait.clone()))?;
        r.register(Box::new(self.lock_hold.clone()))?;
        r.register(Box::new(self.gate_wait.clone()))?;
        r.register(Box::new(self.syncs.clone()))?;
        r.register(Box::new(self.synced_records.clone()))?;
        r.register(Box::new(self.open_accounts.clone()))?;
        r.register(Box::new(self.request_ids.clone()))?;
        r.register(Box::new(self.inflight.clone()))?;
        r.register(Box::new(self.queued.clone()))?;
        r.register(Box::new(self.waiting.clone()))?;
        #[cfg(target_os = "linux")]
        r.register(Box::new(crate::observe::process::PreciseProcess::for_self()))?;
        Ok(())
    }

    /// Makes every labelled series the server can produce, at 0.
    fn zero_all(&self) {
        for method in METHODS {
            self.rpc_latency.with_label_values(&[method]);
            for code in ERROR_CODES {
                self.rpc_errors.with_label_values(&[method, code]);
            }
        }
        for (method, outcomes) in OUTCOMES {
            for outcome in outcomes {
                self.operations.with_label_values(&[method, outcome]);
            }
        }
        for (listener, reasons) in REFUSALS {
            for reason in reasons {
                self.connections_refused.with_label_values(&[listener, reason]);
            }
        }
    }

    /// One op waited `wait` at its account's gate before it was admitted.
    pub fn gate_waited(&self, wait: Duration) {
        self.gate_wait.observe(wait.as_secs_f64());
    }

    /// One first application of `method` with `outcome`.
    pub fn operation(&self, method: &str, outcome: &str) {
        self.operations.with_label_values(&[method, outcome]).inc();
    }

    /// One call of `method` answered with error `code`.
    pub fn rpc_error(&self, method: &str, code: &str) {
        self.rpc_errors.with_label_values(&[method, code]).inc();
    }

    /// One call of `method` took `took`, server-side.
    pub fn rpc_latency(&self, method: &str, took: Duration) {
        self.rpc_latency
            .with_label_values(&[method])
            .observe(took.as_secs_f64());
    }

    /// One connection on `listener` closed before it was served, for `reason`.
    pub fn connection_refused(&self, listener: &str, reason: &str) {
        self.connections_refused
            .with_label_values(&[listener, reason])
            .inc();
    }

    /// The current value of `bank_operations_total{method,outcome}` (tests).
    pub fn operations(&self, method: &str, outcome: &str) -> u64 {
        self.operations.with_label_values(&[method, outcome]).get()
    }

    /// The Prometheus text exposition of every metric, with `state` sampled now.
    pub fn render(&self, state: StateSample) -> String {
        self.open_accounts.set(clamp(state.open_accounts));
        self.request_ids.set(clamp(state.remembered_request_ids));
        self.inflight.set(clamp(state.inflight_calls));
        self.queued.set(clamp(state.admission_queued));
        self.waiting.set(clamp(state.waiting_withdrawals));
        self.db.sample_pool(state.db_pool);
        if let Some((syncs, records)) = state.journal {
            catch_up(&self.syncs, syncs);
            catch_up(&self.synced_records, records);
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!("encoding metrics failed: {e}");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl crate::backend::ledger::LedgerObserver for Metrics {
    fn lock_waited(&self, wait: Duration) {
        self.lock_wait.observe(wait.as_secs_f64());
    }

    fn lock_held(&self, held: Duration) {
        self.lock_hold.observe(held.as_secs_f64());
    }

    fn db_statement(&self, took: Duration) {
        self.db.statement(took);
    }

    fn db_retry(&self) {
        self.db.retry();
    }

    // Syncs are read from the journal's own counters at scrape time
    // (`StateSample::journal`), so `synced` keeps its default (nothing).
}

/// Brings a counter up to `total`, a count kept elsewhere (never down).
fn catch_up(counter: &IntCounter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}

fn clamp(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
