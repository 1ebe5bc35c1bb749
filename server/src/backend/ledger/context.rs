//! What the ledger needs to know about the call behind an op: whether it was
//! abandoned (deadline passed, client gone), how long it may wait for funds,
//! how to give back its admission slot before it waits, and whether the
//! calling thread may block at all.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A hook that gives back whatever admission the op holds.
pub type Release = Box<dyn FnOnce() + Send>;

/// The liveness of one call, as seen from inside the critical section.
pub struct CallContext {
    deadline: Option<Instant>,
    cancelled: Arc<AtomicBool>,
    release: Option<Release>,
    may_block: bool,
}

impl CallContext {
    /// A call with an optional deadline and a flag set when its client goes away.
    pub fn new(deadline: Option<Instant>, cancelled: Arc<AtomicBool>) -> Self {
        CallContext {
            deadline,
            cancelled,
            release: None,
            may_block: true,
        }
    }

    /// A call that is never abandoned (tests, in-process callers).
    pub fn detached() -> Self {
        Self::new(None, Arc::new(AtomicBool::new(false)))
    }

    /// Attaches the hook that frees the op's admission slot.
    pub fn with_release(mut self, release: Release) -> Self {
        self.release = Some(release);
        self
    }

    /// Whether the calling thread may block (wait for the lock, sleep the
    /// processing delay, wait for funds). True unless set otherwise.
    pub fn may_block(&self) -> bool {
        self.may_block
    }

    /// Declares whether the calling thread may block. An op run on a context
    /// that may not (an async worker) takes the lock only if it is free now and
    /// nothing in it can sleep or wait; otherwise it ends in
    /// [`Attempt::WouldBlock`](super::Attempt::WouldBlock), having changed
    /// nothing, and is to be run again on a thread that may block.
    pub fn set_may_block(&mut self, may_block: bool) {
        self.may_block = may_block;
    }

    /// The flag set when the call is abandoned (its client gone), for a
    /// backend that must hear of it while the op waits on another thread.
    pub fn abandoned_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.cancelled)
    }

    /// The call's deadline, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// True when nobody will read the answer: the deadline passed or the client left.
    pub fn abandoned(&self) -> bool {
        self.cancelled.load(Ordering::Acquire) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Frees the admission slot now (idempotent). A waiter calls this so the
    /// deposit it waits for can get in.
    pub fn release_admission(&mut self) {
        if let Some(release) = self.release.take() {
            release();
        }
    }

    /// When a wait for funds must end: the server maximum, or early enough to
    /// answer before the call's deadline after the processing delay.
    pub fn wait_until(&self, max_wait: Duration, processing_delay: Duration) -> Instant {
        let now = Instant::now();
        // Config caps max_wait far below overflow; fall back to "no wait" anyway.
        let cap = now.checked_add(max_wait).unwrap_or(now);
        match self.deadline {
            Some(deadline) => cap.min(deadline.checked_sub(processing_delay).unwrap_or(now)),
            None => cap,
        }
    }
}
