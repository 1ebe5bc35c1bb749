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

    /// Takes `mutex` only if it is free now, or within a few tries
    /// ([`TRY_LOCK_SPINS`]).
    pub(super) fn try_lock(mutex: &'a Mutex<State>, observer: &'a Observer) -> Option<Self> {
        let mut guard = spin_try_lock(mutex)?;
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

/// How many times an op that may not block (on an async worker) tries a
/// held lock before it goes to the account's runner instead: a few
/// microseconds. Ops only try where nothing sleeps under the lock (no
/// delay, no zoo), so a holder lets go within about a microsecond; giving
/// up at once sent a hot account's ops that met the other worker's hold
/// through the runner's thread (a hand-off and two wake-ups each).
pub const TRY_LOCK_SPINS: u32 = 64;

fn spin_try_lock(mutex: &Mutex<State>) -> Option<MutexGuard<'_, State>> {
    spin(TRY_LOCK_SPINS, || mutex.try_lock())
}

/// `attempt` until it succeeds, at most `spins` + 1 times.
fn spin<T>(spins: u32, mut attempt: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..spins {
        if let Some(done) = attempt() {
            return Some(done);
        }
        std::hint::spin_loop();
    }
    attempt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lock freed a few tries later is taken, not given up at once.
    #[test]
    fn a_held_lock_is_tried_again_before_giving_up() {
        let mut tries = 0;
        let free_at_fifth = || {
            tries += 1;
            (tries == 5).then_some(())
        };
        assert_eq!(spin(TRY_LOCK_SPINS, free_at_fifth), Some(()));
        let mut tries = 0;
        let never = || {
            tries += 1;
            None::<()>
        };
        assert_eq!(spin(TRY_LOCK_SPINS, never), None);
    }
}
