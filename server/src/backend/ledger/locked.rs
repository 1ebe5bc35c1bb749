//! An account's lock guard that reports how long the lock was waited for and
//! held to the ledger's [`Observer`] (nothing is timed when none listens).
//! Taking the lock first settles the account's unsynced changes (see
//! `unsynced`), so whoever holds it sees synced or still-pending state,
//! never state a failed flush lost.

use std::ops::{Deref, DerefMut};
use std::time::Instant;

use parking_lot::{Mutex, MutexGuard};

use super::observer::Observer;
use super::state::State;

/// A held account lock; the hold is reported when it is dropped.
pub(super) struct Locked<'a> {
    guard: MutexGuard<'a, State>,
    since: Option<Instant>,
    observer: &'a Observer,
}

impl<'a> Locked<'a> {
    /// Takes `mutex`, waiting as long as needed.
    pub(super) fn lock(mutex: &'a Mutex<State>, observer: &'a Observer) -> Self {
        let (mut guard, since) = if observer.is_set() {
            let asked = Instant::now();
            let guard = mutex.lock();
            let since = Instant::now();
            observer.lock_waited(since.saturating_duration_since(asked));
            (guard, Some(since))
        } else {
            (mutex.lock(), None)
        };
        guard.settle_unsynced();
        Locked {
            guard,
            since,
            observer,
        }
    }

    /// Takes `mutex` only if it is free now.
    pub(super) fn try_lock(mutex: &'a Mutex<State>, observer: &'a Observer) -> Option<Self> {
        let mut guard = mutex.try_lock()?;
        guard.settle_unsynced();
        let since = observer.is_set().then(Instant::now);
        Some(Locked {
            guard,
            since,
            observer,
        })
    }

    fn report_hold(&mut self) {
        if let Some(since) = self.since.take() {
            self.observer.lock_held(since.elapsed());
        }
    }
}

impl Deref for Locked<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        &self.guard
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.guard
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.report_hold();
    }
}
