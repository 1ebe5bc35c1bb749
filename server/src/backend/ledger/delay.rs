//! The simulated processing time, held while the caller owns an account's lock.
//!
//! A plain `thread::sleep(d)` lasts `d` plus the kernel's timer slack (50 µs
//! by default on Linux) plus the wake-up latency, and that overshoot is paid
//! by every op queued behind the lock: at 2 ms it costs ~4% of a hot
//! account's throughput. So the holding thread runs with a 1 ns timer slack,
//! sleeps `d` minus a low estimate of the overshoot (the timer's floor, not
//! the delays of a busy run queue, which no early wake-up can beat), and
//! yields out the few microseconds left. The hold is never shorter than `d`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::config::LedgerConfig;

/// How late `thread::sleep` wakes up, in nanoseconds: a low running
/// quantile, shared by all threads since they all sleep the same delay.
static OVERSHOOT_NS: AtomicU64 = AtomicU64::new(0);

/// The most a sleep is shortened, so the most a hold yields at its end.
const MAX_EARLY_NS: u64 = 100_000;

/// Below this a remaining wait is yielded out rather than slept.
const MIN_SLEEP: Duration = Duration::from_micros(5);

/// Holds the calling thread for at least `delay` (nothing for zero).
pub fn hold(delay: Duration) {
    if delay.is_zero() {
        return;
    }
    let deadline = Instant::now() + delay;
    precise_timers();
    loop {
        let now = Instant::now();
        let Some(left) = deadline.checked_duration_since(now) else {
            return;
        };
        let early = Duration::from_nanos(OVERSHOOT_NS.load(Ordering::Relaxed));
        if left <= early + MIN_SLEEP {
            break;
        }
        let asked = left - early;
        std::thread::sleep(asked);
        learn(now.elapsed().saturating_sub(asked));
    }
    // Yield rather than spin: on a busy machine the core goes to other work.
    while Instant::now() < deadline {
        std::thread::yield_now();
    }
}

/// Folds one observed overshoot into the estimate: down fast (by 1/4 of the
/// gap), up slowly (1/64), so it tracks a low quantile of the overshoot.
fn learn(late: Duration) {
    let late = u64::try_from(late.as_nanos())
        .unwrap_or(u64::MAX)
        .min(MAX_EARLY_NS);
    // Relaxed and racy on purpose: a lost update only delays the estimate.
    let old = OVERSHOOT_NS.load(Ordering::Relaxed);
    let new = if late < old {
        old - (old - late) / 4
    } else {
        old + (late - old) / 64
    };
    OVERSHOOT_NS.store(new, Ordering::Relaxed);
}

/// Sets this thread's timer slack to 1 ns, once per thread.
#[cfg(target_os = "linux")]
fn precise_timers() {
    use std::cell::Cell;
    thread_local! {
        static DONE: Cell<bool> = const { Cell::new(false) };
    }
    DONE.with(|done| {
        if !done.replace(true) {
            // SAFETY: PR_SET_TIMERSLACK takes one integer argument and only
            // changes the calling thread's timer slack; no memory is passed.
            unsafe {
                libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
            }
        }
    });
}

#[cfg(not(target_os = "linux"))]
fn precise_timers() {}

/// The simulated processing time, held while the caller holds the lock.
pub(super) fn processing_delay(cfg: &LedgerConfig) {
    hold(cfg.processing_delay);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_least_the_delay_and_not_much_more() {
        let delay = Duration::from_millis(2);
        let started = Instant::now();
        for _ in 0..20 {
            let t = Instant::now();
            hold(delay);
            assert!(t.elapsed() >= delay);
        }
        // Generous: a loaded CI machine may be slow, never faster.
        assert!(started.elapsed() < delay * 20 * 3, "{:?}", started.elapsed());
        let t = Instant::now();
        hold(Duration::ZERO);
        assert!(t.elapsed() < Duration::from_millis(1));
    }
}
