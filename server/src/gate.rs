//! The per-account admission gate: an async FIFO in front of the blocking pool.
//! At most `max_blocking` ops of one account hold a blocking thread; the rest
//! wait here as futures, at no thread cost, up to `max_queued` in all.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ledger::{LedgerError, LedgerResult};

/// Admission to one account's critical section.
#[derive(Debug)]
pub struct Gate {
    permits: Arc<Semaphore>,
    admitted: Arc<AtomicUsize>,
    max_queued: usize,
}

/// Proof of admission: while it lives the op counts against the gate's limits.
#[derive(Debug)]
pub struct Admission {
    _permit: OwnedSemaphorePermit,
    _slot: Slot,
}

/// One of the `max_queued` places, given back on drop (also when cancelled).
#[derive(Debug)]
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    /// A gate that lets `max_blocking` ops run and `max_queued` be admitted at once.
    pub fn new(max_blocking: usize, max_queued: usize) -> Self {
        Gate {
            permits: Arc::new(Semaphore::new(max_blocking.max(1))),
            admitted: Arc::new(AtomicUsize::new(0)),
            max_queued: max_queued.max(1),
        }
    }

    /// Waits (FIFO, asynchronously) for a turn on the account, or refuses at
    /// once with `LimitReached` when `max_queued` ops are already admitted.
    pub async fn admit(&self) -> LedgerResult<Admission> {
        let before = self.admitted.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(Arc::clone(&self.admitted));
        if before >= self.max_queued {
            return Err(LedgerError::LimitReached(format!(
                "{before} operations are already queued on this account (max_queued_per_account)"
            )));
        }
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| LedgerError::ShuttingDown)?;
        Ok(Admission {
            _permit: permit,
            _slot: slot,
        })
    }

    /// Ops admitted now (queued at the gate or running).
    pub fn admitted(&self) -> usize {
        self.admitted.load(Ordering::Acquire)
    }
}
