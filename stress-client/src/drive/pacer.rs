//! Waiting until a scheduled op is due, to within tens of µs.
//!
//! Why not `tokio::time::sleep_until`: tokio's timer wheel has 1 ms slots
//! and rounds every deadline up to the next one, so a scheduled send left
//! 0–1 ms late (issue 21: corrected p50 1,115 µs against uncorrected 169 µs
//! at `--rate 500`) and the coordinated-omission correction counted that
//! lateness as server latency.
//!
//! On Linux each worker owns a `timerfd` (a kernel hrtimer, which has no
//! timer slack) registered with the worker's runtime: the runtime's
//! `epoll_wait` returns when it fires, so the worker wakes within the
//! scheduler's latency of the deadline and no thread spins. Measured
//! (release, 2-core machine shared with other builds, load average ~17,
//! client and server at nice -10; `--rate 500`, 4 s, zero-delay server,
//! three runs each), corrected p50 − uncorrected p50 and the lateness p50:
//!   timerfd           57–97 µs,   lateness p50 47–55 µs,  client CPU 0.2 s
//!   sleep + yield   288–796 µs,  lateness p50 214–323 µs, client CPU 0.5 s
//!   tokio sleep   753–1,183 µs,  lateness p50 720–1,115 µs
//! The yield tail loses on a busy machine: a thread that keeps yielding
//! uses up its share, so the scheduler runs it late, and each yield is a
//! trip through the runtime's I/O poll that burns the core the server
//! under test needs. (At `--rate 5000` all three were 0.5–5 ms late on this
//! overloaded machine: the wake-ups wait for a core; see bench P15.) The
//! tail stays as the fallback where a `timerfd` cannot be made, and
//! [`PACER_ENV`] picks a timer to compare them.
//!
//! The ≈ 50 µs left is the wake-up through `epoll` (from an idle core).
//! Setting the timer early by a learned low quantile of it and yielding out
//! the rest (`timerfd-tail`, at most [`MAX_EARLY`]) closes it. On that
//! overloaded machine it cut the gap at 500/s (38, 45, 130 µs against 61,
//! 77, 92) but hurt at 5,000/s (148, 233, 1,436 µs against 46, 44, 42): the
//! tails of overlapping workers held up the thread's other wake-ups. On an
//! idle machine (bench P15, the lead's runs; noise 0–13 %) it does better at
//! both rates with the same client CPU per op: gap 38, 47 and 59 µs at 500/s
//! and 4–7 µs at 5,000/s, against 53–67 µs and 41 µs for the plain `timerfd`
//! (so 500/s still misses the 50 µs target at times: see bench/RESULTS.md).
//! So `timerfd-tail` is the default: a generator is judged where it has the
//! cores it needs, and where it has not, the reported lateness and its
//! warning say so whatever the timer.

use std::time::{Duration, Instant};

/// The fallback sleeps with tokio's timer to this long before the deadline
/// (tokio's 1 ms granularity plus its rounding), then yields out the rest.
pub const COARSE_MARGIN: Duration = Duration::from_micros(1_500);

/// How a wait for `due` starts, seen at `now` (a pure decision, so it is
/// testable without a clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Due already: go now.
    Now,
    /// Arm the precise timer for this long.
    Precise(Duration),
    /// Fallback: sleep coarsely until this instant, then yield to `due`.
    Coarse(Instant),
    /// Fallback, close to `due`: yield until it.
    Yield,
}

/// What the fallback does at `now` for a deadline `due`.
pub fn coarse_plan(now: Instant, due: Instant) -> Plan {
    match due.checked_duration_since(now) {
        None => Plan::Now,
        Some(left) if left.is_zero() => Plan::Now,
        Some(left) if left > COARSE_MARGIN => Plan::Coarse(due - COARSE_MARGIN),
        Some(_) => Plan::Yield,
    }
}

/// What the precise timer does at `now` for a deadline `due`.
pub fn precise_plan(now: Instant, due: Instant) -> Plan {
    match due.checked_duration_since(now) {
        Some(left) if !left.is_zero() => Plan::Precise(left),
        _ => Plan::Now,
    }
}

/// Environment variable that picks the timer, to measure the choices side
/// by side (bench): `timerfd-tail` (the default: the timerfd set early by
/// a learned wake-up delay, then a short yield tail), `timerfd` (alone), `tail`
/// (the fallback) or `tokio` (tokio's sleep alone, the old pacer).
pub const PACER_ENV: &str = "STRESS_CLIENT_PACER";

/// The most `timerfd-tail` wakes early, so the longest tail it yields out.
pub const MAX_EARLY: Duration = Duration::from_micros(50);

/// Which timer the workers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    TimerFd,
    TimerFdTail,
    Tail,
    Tokio,
}

/// How early to set the timer: a low running quantile of how late it woke
/// (down fast by 1/4 of the gap, up slowly by 1/64, at most [`MAX_EARLY`]),
/// as the server's processing delay learns its sleep's overshoot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EarlyWake {
    early_ns: u64,
}

impl EarlyWake {
    /// How long before a deadline to set the timer.
    pub fn early(&self) -> Duration {
        Duration::from_nanos(self.early_ns)
    }

    /// Folds in one wake-up that came `late` after the timer's deadline.
    pub fn learn(&mut self, late: Duration) {
        let cap = u64::try_from(MAX_EARLY.as_nanos()).unwrap_or(u64::MAX);
        let late = u64::try_from(late.as_nanos()).unwrap_or(u64::MAX).min(cap);
        let old = self.early_ns;
        self.early_ns = if late < old {
            old - (old - late) / 4
        } else {
            old + (late - old) / 64
        };
    }
}

impl Kind {
    /// The kind [`PACER_ENV`] names (read once); the default for anything else.
    pub fn from_env() -> Kind {
        static KIND: std::sync::OnceLock<Kind> = std::sync::OnceLock::new();
        *KIND.get_or_init(|| match std::env::var(PACER_ENV).as_deref() {
            Ok("tail") => Kind::Tail,
            Ok("timerfd") => Kind::TimerFd,
            Ok("tokio") => Kind::Tokio,
            _ => Kind::TimerFdTail,
        })
    }
}

/// The most `timerfd`s open at once (one per open-loop worker): each is a
/// file descriptor, and a run of thousands of streams must keep its
/// descriptors for connections. Workers past it use tokio's timer (1 ms
/// granularity, no spinning); the reported lateness shows what that costs.
pub const MAX_TIMERFDS: usize = 512;

/// One worker's timer. Its `timerfd` is made at the first wait, so a
/// closed-loop worker, which never waits, holds none.
#[derive(Debug)]
pub struct Pacer {
    kind: Kind,
    tried: bool,
    #[cfg(target_os = "linux")]
    fd: Option<timerfd::TimerFd>,
}

impl Pacer {
    /// The timer [`PACER_ENV`] picks (a `timerfd` by default). Must wait
    /// inside the runtime the worker runs on.
    pub fn new() -> Self {
        Pacer {
            kind: Kind::from_env(),
            tried: false,
            #[cfg(target_os = "linux")]
            fd: None,
        }
    }

    /// Returns at `due` or just after; at once if it has passed. Cancel-safe:
    /// dropped midway, it leaves nothing behind but an armed timer that the
    /// next wait re-arms.
    pub async fn until(&mut self, due: Instant) {
        #[cfg(target_os = "linux")]
        {
            if !std::mem::replace(&mut self.tried, true) {
                self.fd = timerfd::TimerFd::new(self.kind).ok().flatten();
            }
            if let Some(fd) = self.fd.as_mut() {
                return fd.until(due).await;
            }
            // No timerfd here (the cap, or none could be made): tokio's timer.
            if self.kind != Kind::Tail {
                return tokio::time::sleep_until(due.into()).await;
            }
        }
        if self.kind == Kind::Tokio {
            return tokio::time::sleep_until(due.into()).await;
        }
        fallback(due).await;
    }
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer::new()
    }
}

/// tokio's sleep to [`COARSE_MARGIN`] before, then a `yield_now` tail.
async fn fallback(due: Instant) {
    loop {
        match coarse_plan(Instant::now(), due) {
            Plan::Now | Plan::Precise(_) => return,
            Plan::Coarse(at) => tokio::time::sleep_until(at.into()).await,
            Plan::Yield => tokio::task::yield_now().await,
        }
    }
}

#[cfg(target_os = "linux")]
mod timerfd {
    //! A non-blocking `timerfd` on CLOCK_MONOTONIC (std's `Instant` clock)
    //! in the current tokio runtime.

    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::time::{Duration, Instant};

    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{precise_plan, EarlyWake, Kind, Plan, MAX_TIMERFDS};

    /// `timerfd`s open now, against [`MAX_TIMERFDS`].
    static OPEN: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug)]
    pub struct TimerFd {
        fd: AsyncFd<OwnedFd>,
        /// The deadline the timer is armed for (re-arming costs a syscall,
        /// and a worker waits for the same deadline over many events).
        armed: Option<Instant>,
        /// `timerfd-tail`: how early to wake, then yield to the deadline.
        early: Option<EarlyWake>,
    }

    impl TimerFd {
        /// The timer of `kind` (None: not a timerfd kind, or [`MAX_TIMERFDS`] are open).
        pub fn new(kind: Kind) -> io::Result<Option<Self>> {
            if !matches!(kind, Kind::TimerFd | Kind::TimerFdTail) {
                return Ok(None);
            }
            if OPEN.fetch_add(1, Ordering::Relaxed) >= MAX_TIMERFDS {
                OPEN.fetch_sub(1, Ordering::Relaxed);
                return Ok(None);
            }
            let made = TimerFd::open(kind == Kind::TimerFdTail);
            if made.is_err() {
                OPEN.fetch_sub(1, Ordering::Relaxed);
            }
            made.map(Some)
        }

        fn open(tail: bool) -> io::Result<Self> {
            // SAFETY: timerfd_create takes two integer flags and returns a
            // new descriptor or -1; no memory is passed.
            let raw = unsafe {
                libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC)
            };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `raw` is a descriptor we just opened and own alone.
            let owned = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: an `OwnedFd` keeps its descriptor open, and the same,
            // for as long as the `AsyncFd` owns it.
            let fd = unsafe { AsyncFd::register_with_interest(owned, Interest::READABLE) }
                .map_err(|e| io::Error::other(format!("cannot register a timerfd: {e}")))?;
            Ok(TimerFd {
                fd,
                armed: None,
                early: tail.then(EarlyWake::default),
            })
        }

        pub async fn until(&mut self, due: Instant) {
            loop {
                let early = self.early.map_or(Duration::ZERO, |e| e.early());
                let Plan::Precise(left) = precise_plan(Instant::now(), due) else {
                    return;
                };
                if left <= early {
                    // The tail: at most MAX_EARLY of yielding to other tasks.
                    while Instant::now() < due {
                        tokio::task::yield_now().await;
                    }
                    return;
                }
                let target = due - early;
                if self.armed != Some(target) && arm(self.fd.as_raw_fd(), left - early).is_err() {
                    // Cannot arm (never seen): do not spin, go now.
                    return;
                }
                self.armed = Some(target);
                let Ok(mut guard) = self.fd.readable().await else {
                    return;
                };
                // Fired: for this deadline or an older one; the loop checks.
                // (Not yet: `try_io` cleared the readiness; wait again.)
                if let Ok(Ok(_)) = guard.try_io(|fd| read_expirations(fd.as_raw_fd())) {
                    self.armed = None;
                    if let Some(e) = self.early.as_mut() {
                        e.learn(Instant::now().saturating_duration_since(target));
                    }
                }
            }
        }
    }

    impl Drop for TimerFd {
        fn drop(&mut self) {
            OPEN.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Arms the timer to fire once, `left` from now.
    fn arm(fd: RawFd, left: Duration) -> io::Result<()> {
        // Zero disarms a timerfd: at least 1 ns.
        let left = left.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: libc::time_t::try_from(left.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_nsec: libc::c_long::from(i32::try_from(left.subsec_nanos()).unwrap_or(0)),
            },
        };
        // SAFETY: `spec` is a valid itimerspec for the call's duration; the
        // old value is not asked for (null).
        let rc = unsafe { libc::timerfd_settime(fd, 0, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reads (and so clears) the expiration count; WouldBlock when not fired.
    fn read_expirations(fd: RawFd) -> io::Result<u64> {
        let mut buf = [0u8; 8];
        // SAFETY: `buf` is 8 writable bytes, the size a timerfd read needs.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(u64::from_ne_bytes(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_follow_the_deadline_not_the_clock() {
        let now = Instant::now();
        let us = Duration::from_micros;
        assert_eq!(coarse_plan(now, now), Plan::Now);
        assert_eq!(coarse_plan(now + us(5), now), Plan::Now);
        assert_eq!(coarse_plan(now, now + us(200)), Plan::Yield);
        assert_eq!(coarse_plan(now, now + COARSE_MARGIN), Plan::Yield);
        let due = now + COARSE_MARGIN + us(1);
        assert_eq!(coarse_plan(now, due), Plan::Coarse(now + us(1)));
        assert_eq!(precise_plan(now, now + us(37)), Plan::Precise(us(37)));
        assert_eq!(precise_plan(now + us(1), now), Plan::Now);
        assert_eq!(precise_plan(now, now), Plan::Now);
    }

    #[test]
    fn the_early_wake_tracks_a_low_quantile_and_is_capped() {
        let us = Duration::from_micros;
        let mut e = EarlyWake::default();
        for _ in 0..2_000 {
            e.learn(us(40));
        }
        assert!(e.early() > us(38) && e.early() <= us(40), "{:?}", e.early());
        // One slow wake-up moves it little; fast ones pull it down quickly.
        e.learn(us(5_000));
        assert!(e.early() <= MAX_EARLY, "{:?}", e.early());
        for _ in 0..20 {
            e.learn(us(10));
        }
        assert!(e.early() < us(12), "{:?}", e.early());
    }

    /// The waits end at or after their deadline, in order (no timing bound:
    /// punctuality is measured in bench/run.sh P15, not asserted here).
    #[test]
    fn waits_never_end_early() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut pacer = Pacer::new();
            let start = Instant::now();
            for k in 0..20u64 {
                let due = start + Duration::from_micros(100 * k);
                pacer.until(due).await;
                assert!(Instant::now() >= due, "op {k} left early");
            }
            // A passed deadline returns at once; a later one after a drop works.
            pacer.until(start).await;
            let due = Instant::now() + Duration::from_micros(300);
            drop(tokio::time::timeout(Duration::ZERO, pacer.until(due + Duration::from_secs(9))).await);
            pacer.until(due).await;
            assert!(Instant::now() >= due);
            fallback(Instant::now() + Duration::from_micros(50)).await;
            #[cfg(target_os = "linux")]
            // (None only while the cap test holds every timerfd.)
            if let Some(mut tail) = timerfd::TimerFd::new(Kind::TimerFdTail).unwrap() {
                let start = Instant::now();
                for k in 0..50u64 {
                    let due = start + Duration::from_micros(100 * k);
                    tail.until(due).await;
                    assert!(Instant::now() >= due, "op {k} left early (timerfd-tail)");
                }
            }
        });
    }

    /// A worker past [`MAX_TIMERFDS`] gets none (it uses tokio's timer);
    /// dropped ones are given back.
    #[cfg(target_os = "linux")]
    #[test]
    fn timerfds_are_capped_and_given_back() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut held = Vec::new();
            while let Some(t) = timerfd::TimerFd::new(Kind::TimerFd).unwrap() {
                held.push(t);
                assert!(held.len() <= MAX_TIMERFDS);
            }
            // Other tests may hold a few at the same time.
            assert!(held.len() + 4 >= MAX_TIMERFDS, "{}", held.len());
            drop(held);
            assert!(timerfd::TimerFd::new(Kind::TimerFd).unwrap().is_some());
            assert!(timerfd::TimerFd::new(Kind::Tokio).unwrap().is_none());
        });
    }
}
