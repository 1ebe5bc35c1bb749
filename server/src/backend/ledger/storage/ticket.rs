//! A claim on a pending storage commit: records appended to the journal's
//! next flush get its ticket, and whoever must not answer before they are on
//! stable storage waits on it. A thread that may block waits on a condition
//! variable; an async task awaits it as a `Future` (std wakers only, so the
//! ledger stays free of any runtime). A ticket completes once, with the
//! flush's outcome, and never changes after that.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use parking_lot::{Condvar, Mutex};

use super::StorageError;

/// What a flush came to.
pub type Flushed = Result<(), StorageError>;

/// One flush's shared outcome (see the module doc). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Ticket(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    result: OnceLock<Flushed>,
    /// Wakers of async waiters and the lock blocking waiters sleep with.
    waiters: Mutex<Vec<Waker>>,
    done: Condvar,
}

impl Ticket {
    /// The outcome, once the flush is over.
    pub fn status(&self) -> Option<&Flushed> {
        self.0.result.get()
    }

    /// Whether the flush failed (its records are not durable).
    pub fn failed(&self) -> bool {
        matches!(self.status(), Some(Err(_)))
    }

    /// Sets the outcome (the first one wins) and wakes every waiter.
    pub fn complete(&self, result: Flushed) {
        let _ = self.0.result.set(result);
        let wakers = std::mem::take(&mut *self.0.waiters.lock());
        self.0.done.notify_all();
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Blocks until the flush is over; its outcome.
    pub fn wait(&self) -> Flushed {
        let mut waiters = self.0.waiters.lock();
        loop {
            if let Some(result) = self.0.result.get() {
                return result.clone();
            }
            self.0.done.wait(&mut waiters);
        }
    }

    /// Waits without blocking a thread: a future of the flush's outcome.
    pub fn flushed(&self) -> TicketWait {
        TicketWait(self.clone())
    }
}

/// The future of [`Ticket::flushed`].
#[derive(Debug)]
pub struct TicketWait(Ticket);

impl Future for TicketWait {
    type Output = Flushed;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Flushed> {
        let inner = &self.0 .0;
        if let Some(result) = inner.result.get() {
            return Poll::Ready(result.clone());
        }
        let mut waiters = inner.waiters.lock();
        // Checked again under the lock `complete` takes: no lost wake-up.
        if let Some(result) = inner.result.get() {
            return Poll::Ready(result.clone());
        }
        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocked_waiter_hears_the_outcome_once() {
        let t = Ticket::default();
        assert!(t.status().is_none());
        let waiter = {
            let t = t.clone();
            std::thread::spawn(move || t.wait())
        };
        t.complete(Err(StorageError("disk full".into())));
        t.complete(Ok(()));
        assert_eq!(waiter.join().unwrap(), Err(StorageError("disk full".into())));
        assert!(t.failed());
    }
}
