//! What the ledger tells whoever watches it, without knowing who that is:
//! lock waits and holds now, and (for a durable ledger) syncs and their batch
//! sizes. The service layer implements [`LedgerObserver`] with its metrics;
//! the ledger itself stays plain sync Rust with no metrics crate.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Receives the ledger's measurements; every method defaults to doing nothing.
pub trait LedgerObserver: Send + Sync {
    /// A thread waited `wait` for an account's lock.
    fn lock_waited(&self, _wait: Duration) {}
    /// A thread held an account's lock for `held`.
    fn lock_held(&self, _held: Duration) {}
    /// A durable ledger wrote and synced `batch` records in `took` (hook for `--data-dir`).
    fn synced(&self, _batch: usize, _took: Duration) {}
    /// A database ledger ran one SQL statement in `took`.
    fn db_statement(&self, _took: Duration) {}
    /// A database ledger runs a transaction again (serialization failure, deadlock).
    fn db_retry(&self) {}
}

/// The observer a ledger reports to, if any; cheap to clone.
#[derive(Clone, Default)]
pub struct Observer(Option<Arc<dyn LedgerObserver>>);

impl Observer {
    /// Reports to `observer`.
    pub fn new(observer: Arc<dyn LedgerObserver>) -> Self {
        Observer(Some(observer))
    }

    /// Whether anyone listens (timing is skipped otherwise).
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// See [`LedgerObserver::lock_waited`].
    pub fn lock_waited(&self, wait: Duration) {
        if let Some(o) = &self.0 {
            o.lock_waited(wait);
        }
    }

    /// See [`LedgerObserver::lock_held`].
    pub fn lock_held(&self, held: Duration) {
        if let Some(o) = &self.0 {
            o.lock_held(held);
        }
    }

    /// See [`LedgerObserver::synced`].
    pub fn synced(&self, batch: usize, took: Duration) {
        if let Some(o) = &self.0 {
            o.synced(batch, took);
        }
    }
}

impl Observer {
    /// See [`LedgerObserver::db_statement`].
    pub fn db_statement(&self, took: Duration) {
        if let Some(o) = &self.0 {
            o.db_statement(took);
        }
    }

    /// See [`LedgerObserver::db_retry`].
    pub fn db_retry(&self) {
        if let Some(o) = &self.0 {
            o.db_retry();
        }
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_set() {
            "Observer(set)"
        } else {
            "Observer(none)"
        })
    }
}
