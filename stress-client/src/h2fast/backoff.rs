//! How often a fast-path connection may try to reconnect: after a failed
//! attempt the next one waits, twice as long after each failure in a row
//! (from [`RECONNECT_BACKOFF_MIN`] to [`RECONNECT_BACKOFF_MAX`]), and the
//! first success resets it. A call that finds the connection broken waits
//! out the backoff (beside the other calls, not behind them); one of them
//! then tries, and the others take its outcome: a call that waited while an
//! attempt failed fails with that attempt's error without one of its own.
//! Without it a dead target turns a closed loop into a flood: every op
//! fails at once with a refused connect, tens of thousands a second, each
//! of unknown outcome and settled afterwards.

use std::time::Duration;

use tokio::time::Instant;

/// The wait after the first failed attempt.
pub const RECONNECT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// The longest wait between two attempts.
pub const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The failures in a row, when the next attempt may be made, and the last
/// failure (when and why).
#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
    retry_at: Option<Instant>,
    last_failure: Option<(Instant, String)>,
}

impl Backoff {
    /// When the next attempt may be made (`None`: at once).
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Why an attempt made after `since` failed, if one did: a caller that
    /// waited since then takes that outcome instead of trying again.
    pub fn failed_since(&self, since: Instant) -> Option<&str> {
        let (at, why) = self.last_failure.as_ref()?;
        (*at >= since).then_some(why.as_str())
    }

    /// Books a failed attempt made at `now`, and why it failed.
    pub fn failed(&mut self, now: Instant, why: String) {
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(now + self.delay());
        self.last_failure = Some((now, why));
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
                b.failed(now, "refused".into());
                (b.retry_at.unwrap() - now).as_millis()
            })
            .collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        assert_eq!(b.failed_since(now), Some("refused"));
        assert_eq!(b.failed_since(now + Duration::from_millis(1)), None);
        b.succeeded();
        assert_eq!(b.failed_since(now), None);
        b.failed(now, "refused".into());
        assert_eq!((b.retry_at.unwrap() - now).as_millis(), 10);
    }
}
