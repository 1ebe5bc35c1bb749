//! The metrics of a ledger in a database (`--database-url`): pooled
//! connections by state (sampled at scrape time), the latency of each SQL
//! statement, and the transactions rerun after a serialization failure or
//! deadlock. Registered always; they stay at zero on the other backends.

use std::time::Duration;

use prometheus::{exponential_buckets, Histogram, HistogramOpts, IntCounter, IntGaugeVec, Opts, Registry};

/// Statement latency buckets, in seconds: 10 µs to about 10 s.
const STATEMENT_BUCKETS: (f64, f64, usize) = (0.000_01, 2.0, 21);

/// The database's metrics.
#[derive(Debug)]
pub struct DbMetrics {
    pool: IntGaugeVec,
    statement: Histogram,
    retries: IntCounter,
}

impl DbMetrics {
    /// The metrics, registered in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let (start, factor, count) = STATEMENT_BUCKETS;
        let m = DbMetrics {
            pool: IntGaugeVec::new(
                Opts::new(
                    "bank_db_pool_connections",
                    "Pooled connections to the ledger database now, by state (idle, in_use).",
                ),
                &["state"],
            )?,
            statement: Histogram::with_opts(
                HistogramOpts::new(
                    "bank_db_statement_seconds",
                    "Latency of one SQL statement of the ledger (a round trip to the database).",
                )
                .buckets(exponential_buckets(start, factor, count)?),
            )?,
            retries: IntCounter::new(
                "bank_db_serialization_retries_total",
                "Ledger transactions rerun after a serialization failure or deadlock.",
            )?,
        };
        registry.register(Box::new(m.pool.clone()))?;
        registry.register(Box::new(m.statement.clone()))?;
        registry.register(Box::new(m.retries.clone()))?;
        Ok(m)
    }

    /// Sets the pool gauges from a sample (idle, in use).
    pub fn sample_pool(&self, pool: Option<(usize, usize)>) {
        let (idle, in_use) = pool.unwrap_or((0, 0));
        self.pool
            .with_label_values(&["idle"])
            .set(i64::try_from(idle).unwrap_or(i64::MAX));
        self.pool
            .with_label_values(&["in_use"])
            .set(i64::try_from(in_use).unwrap_or(i64::MAX));
    }

    /// One statement took `took`.
    pub fn statement(&self, took: Duration) {
        self.statement.observe(took.as_secs_f64());
    }

    /// One transaction is run again.
    pub fn retry(&self) {
        self.retries.inc();
    }
}
