//! When each op is meant to be sent. Closed loop: as soon as a slot is free.
//! Open loop (`--rate`): a fixed schedule per worker, so latency can be taken
//! from the intended send time and coordinated omission is corrected (wrk2).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stages::Plan;

/// The send schedule of one worker.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Send whenever a slot is free.
    Closed,
    /// Op k is due at `first + k * period`.
    Open {
        first: Instant,
        period: Duration,
        next: u64,
    },
    /// `--stages`: op k of worker w is op k·workers + w of the plan.
    Staged {
        start: Instant,
        plan: Arc<Plan>,
        worker: u32,
        workers: u32,
        next: u64,
    },
}

impl Schedule {
    /// Worker `worker` of `workers` sharing `rate` ops/s from `start`, or closed loop.
    pub fn new(rate: Option<f64>, start: Instant, worker: u32, workers: u32) -> Self {
        let Some(rate) = rate else { return Schedule::Closed };
        let workers = f64::from(workers.max(1));
        // Each worker runs rate/workers ops/s; offsets interleave the workers.
        let period = Duration::from_secs_f64((workers / rate).min(3600.0));
        let offset = period.mul_f64(f64::from(worker) / workers);
        Schedule::Open {
            first: start + offset,
            period,
            next: 0,
        }
    }

    /// Worker `worker` of `workers` sharing the stages of `plan` from `start`.
    pub fn staged(plan: Arc<Plan>, start: Instant, worker: u32, workers: u32) -> Self {
        Schedule::Staged {
            start,
            plan,
            worker,
            workers: workers.max(1),
            next: 0,
        }
    }

    /// When the next op is due (`None`: now).
    pub fn due(&self) -> Option<Instant> {
        match self {
            Schedule::Closed => None,
            Schedule::Open { first, period, next } => {
                let k = u32::try_from(*next).unwrap_or(u32::MAX);
                Some(*first + period.saturating_mul(k))
            }
            Schedule::Staged {
                start,
                plan,
                worker,
                workers,
                next,
            } => {
                let n = *next as f64 * f64::from(*workers) + f64::from(*worker);
                // Past the last stage: due when the plan ends (the budget ends there too).
                Some(*start + plan.due(n).unwrap_or_else(|| plan.total()))
            }
        }
    }

    /// Takes the due slot; returns the op's intended send time (`now` if closed).
    pub fn take(&mut self, now: Instant) -> Instant {
        let due = self.due().unwrap_or(now);
        if let Schedule::Open { next, .. } | Schedule::Staged { next, .. } = self {
            *next += 1;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_spreads_workers_over_the_period() {
        let start = Instant::now();
        let mut a = Schedule::new(Some(100.0), start, 0, 2);
        let b = Schedule::new(Some(100.0), start, 1, 2);
        assert_eq!(a.take(start), start);
        assert_eq!(a.due(), Some(start + Duration::from_millis(20)));
        assert_eq!(b.due(), Some(start + Duration::from_millis(10)));
        let plan = Arc::new(crate::stages::parse_stages("1s@100").unwrap());
        let mut s0 = Schedule::staged(Arc::clone(&plan), start, 0, 2);
        let s1 = Schedule::staged(plan, start, 1, 2);
        assert_eq!(s0.take(start), start);
        assert_eq!(s0.due(), Some(start + Duration::from_millis(20)));
        assert_eq!(s1.due(), Some(start + Duration::from_millis(10)));
        let mut closed = Schedule::new(None, start, 0, 1);
        let now = Instant::now();
        assert_eq!(closed.take(now), now);
    }
}
