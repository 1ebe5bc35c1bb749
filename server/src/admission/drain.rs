//! Shutdown in two steps: first refuse new calls with `UNAVAILABLE` while the
//! in-flight ones finish (this counts them), then stop the transport. A client
//! thus hears a clear status instead of a dropped connection.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;

use crate::backend::ledger::{LedgerError, LedgerResult};

/// Whether the server still takes calls, and how many are running.
#[derive(Debug, Default)]
pub struct Drain {
    shutting_down: AtomicBool,
    inflight: AtomicUsize,
    idle: Notify,
}

/// A running call; dropping it ends the call's count.
#[derive(Debug)]
pub struct Entered<'a>(&'a Drain);

impl Drain {
    /// Counts a new call in, or refuses it once shutdown has begun.
    pub fn enter(&self) -> LedgerResult<Entered<'_>> {
        // Count first, then look at the flag: `drained` reads them in the other
        // order, so a call is either refused or waited for, never missed.
        self.inflight.fetch_add(1, Ordering::SeqCst);
        let entered = Entered(self);
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(LedgerError::ShuttingDown);
        }
        Ok(entered)
    }

    /// From now on every new call is refused.
    pub fn begin(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.idle.notify_waiters();
    }

    /// Resolves once shutdown has begun and no call is running.
    pub async fn drained(&self) {
        loop {
            let notified = self.idle.notified();
            if self.shutting_down.load(Ordering::SeqCst) && self.inflight.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Calls running now.
    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::SeqCst)
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        if self.0.inflight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_after_begin_and_drains_when_the_last_call_ends() {
        let drain = Drain::default();
        let running = drain.enter().expect("serving");
        drain.begin();
        assert_eq!(drain.enter().unwrap_err(), LedgerError::ShuttingDown);
        assert_eq!(drain.inflight(), 1);
        let waiter = drain.drained();
        tokio::pin!(waiter);
        assert!(futures::poll!(&mut waiter).is_pending());
        drop(running);
        waiter.await;
        assert_eq!(drain.inflight(), 0);
    }
}
