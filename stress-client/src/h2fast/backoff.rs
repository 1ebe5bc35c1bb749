//! How often a fast-path connection may try to reconnect: after a failed
//! attempt the next one waits, twice as long after each failure in a row
//! (from [`RECONNECT_BACKOFF_MIN`] to [`RECONNECT_BACKOFF_MAX`]), and the
//! first success resets it. The connection's reconnect task
//! ([`super::reconnect`]) keeps it; calls that find the connection broken
//! wait for the task's next outcome and take it, so a call that waited
//! while an attempt failed fails with that attempt's error. Without it a
//! dead target turns a closed loop into a flood: every op fails at once
//! with a refused connect, tens of thousands a second, each of unknown
//! outcome and settled afterwards.

use std::time::Duration;

use tokio::time::Instant;

/// The wait after the first failed attempt.
pub const RECONNECT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// The longest wait between two attempts.
pub const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The failures in a row, and when the next attempt may be made.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
    retry_at: Option<Instant>,
}

impl Backoff {
    /// When the next attempt may be made (`None`: at once).
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Books a failed attempt that ended at `now`.
    pub fn failed(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(now + self.delay());
    }

    /// Books a success: the next failure starts from the shortest wait.
    pub fn succeeded(&mut self) {
        *self = Backoff::default();
    }

    /// The wait after the failures so far.
    fn delay(&self) -> Duration {
        let doublings = self.failures.saturating_sub(1).min(16);
        RECONNECT_BACKOFF_MIN
            .saturating_mul(1 << doublings)
            .min(RECONNECT_BACKOFF_MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_per_failure_up_to_the_cap_and_a_success_resets_it() {
        let now = Instant::now();
        let mut b = Backoff::default();
        assert!(b.retry_at.is_none());
        let waits: Vec<u128> = (0..10)
            .map(|_| {
                b.failed(now);
                (b.retry_at.unwrap() - now).as_millis()
            })
            .collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        b.succeeded();
        assert!(b.retry_at.is_none());
        b.failed(now);
        assert_eq!((b.retry_at.unwrap() - now).as_millis(), 10);
    }
}
