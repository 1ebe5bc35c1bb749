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
//! `timerfd-tail`, the default, sets the timer early by the learned median
//! of that delay (over each thread's last [`WAKE_WINDOW`] wake-ups, at
//! most [`MAX_EARLY`], and at most 1/[`TAIL_SHARE_DIV`] of the thread's
//! time between sends) and yields out the rest. Each yield goes back
//! through the runtime, which polls its I/O and runs every other ready
//! task first, and the worker's `select!` polls its replies before the
//! pacer: the tail delays no other work, it only keeps the thread from
//! sleeping (its CPU cost, measured in bench/RESULTS.md, P15).
//!
//! History: a low quantile capped at 50 µs (`timerfd-tail-low`, the
//! previous default) left the idle machine's median send still ≈ 40–55 µs
//! late at 500/s (bench P15: gap 38, 47, 59 µs against ≤ 50), because the
//! median wake-up from an idle core is later than 50 µs. Side by side
//! under load (load average 8–9), corrected − uncorrected p50 at 500/s:
//! median 4–7 µs, p90 4–40 µs, the old settings 12–53 µs, plain `timerfd`
//! 51–85 µs; the client's CPU per second of run: median 0.044–0.056 s,
//! plain `timerfd` 0.048–0.053 s, p90 0.094–0.121 s. At 5,000/s every
//! timer had runs 0.2–3 ms late on that machine (wake-ups wait for a
//! core); without the share cap, p90 with a 300 µs cap was late in two of
//! three runs (1–2.7 ms): its tails filled the thread's time.

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
/// the learned median of its wake-up delay, then a short yield tail),
/// `timerfd-tail-p90` (early by the p90), `timerfd-tail-low` (the
/// previous default's settings: a low quantile, at most 50 µs), `timerfd`
/// (alone), `tail` (the fallback) or `tokio` (tokio's sleep alone, the old
/// pacer).
pub const PACER_ENV: &str = "STRESS_CLIENT_PACER";

/// The most `timerfd-tail` wakes early, so the longest tail it yields out
/// per send. Why 300 µs: a wake-up from an idle core through `epoll` took
/// ≈ 40–100 µs on the bench machine (so 50 µs, the old cap, left the median
/// send ≈ 50 µs late at 500/s: bench P15), with room for a slower core,
/// while a loaded machine's delays of milliseconds must not turn into
/// milliseconds of yielding per send (at 500/s, 300 µs per send is at most
/// 15 % of a core; at higher rates [`TAIL_SHARE_DIV`] bounds it further).
pub const MAX_EARLY_US: u16 = 300;

/// [`MAX_EARLY_US`] as a duration.
pub const MAX_EARLY: Duration = Duration::from_micros(MAX_EARLY_US as u64);

/// How many recent wake-up delays the early wake learns from (per thread):
/// 128 ms of history at 500/s, enough for a median (or p90) that follows
/// the machine.
pub const WAKE_WINDOW: usize = 64;

/// Which quantile of the wake-up delay (per mille) the default
/// `timerfd-tail` wakes early by: the median. Why not p90 (9 of 10 sends
/// on time): side by side under load (bench/RESULTS.md, P15) the median
/// was as punctual at 500/s (gap 4–7 µs against 4–40 µs) and cost no CPU
/// over the plain `timerfd`, while p90 cost 0.05–0.07 s of CPU per second
/// more at 500/s: on a loaded machine its p90 sits at the cap, so every
/// send yields for 300 µs.
pub const EARLY_QUANTILE_PERMILLE: u16 = 500;

/// The tail may take at most 1 / this of a thread's time between sends. Why: on a loaded machine the learned delay hits the cap, and
/// at 5,000/s on one thread (200 µs between wake-ups) a 300 µs tail per
/// send would keep the thread yielding all the time; it then uses up its
/// share of the core, is run late, and every send is late (measured: gap
/// 1–2.7 ms at 5,000/s against 3–6 µs at 500/s). A quarter keeps the
/// tail's cost below a quarter of the thread even when every send spins.
pub const TAIL_SHARE_DIV: u32 = 4;

/// How `timerfd-tail` learns its early wake: the quantile and the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tune {
    pub quantile_permille: u16,
    pub max_early_us: u16,
}

impl Tune {
    /// The default: [`EARLY_QUANTILE_PERMILLE`] capped at [`MAX_EARLY`].
    pub const DEFAULT: Tune = Tune {
        quantile_permille: EARLY_QUANTILE_PERMILLE,
        max_early_us: MAX_EARLY_US,
    };
    /// The p90, same cap (`timerfd-tail-p90`).
    pub const P90: Tune = Tune {
        quantile_permille: 900,
        max_early_us: MAX_EARLY_US,
    };
    /// The previous default's settings, for comparison (`timerfd-tail-low`).
    pub const LOW: Tune = Tune {
        quantile_permille: 100,
        max_early_us: 50,
    };
}

/// Which timer the workers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    TimerFd,
    TimerFdTail(Tune),
    Tail,
    Tokio,
}

/// How early to set the timer: a quantile of the last [`WAKE_WINDOW`]
/// wake-up delays (how late the timer's wake-up came), capped at the tune's
/// cap and at 1/[`TAIL_SHARE_DIV`] of the mean time between sends, as
/// the server's processing delay learns its sleep's overshoot. Pure: it is
/// fed the delays and the send instants, so it is testable without a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EarlyWake {
    tune: Tune,
    /// The delays in ns (each at most the cap: a slower one counts as the cap).
    window: [u32; WAKE_WINDOW],
    len: usize,
    next: usize,
    early_ns: u32,
    /// The last send, and the mean time between sends (ns, 0: not known
    /// yet; a moving mean weighing the newest 1/8).
    last_send: Option<Instant>,
    interval_ns: u64,
}

impl EarlyWake {
    pub fn new(tune: Tune) -> Self {
        EarlyWake {
            tune,
            window: [0; WAKE_WINDOW],
            len: 0,
            next: 0,
            early_ns: 0,
            last_send: None,
            interval_ns: 0,
        }
    }

    fn cap_ns(&self) -> u32 {
        u32::from(self.tune.max_early_us) * 1_000
    }

    /// How long before a deadline to set the timer: the quantile, at most
    /// 1/[`TAIL_SHARE_DIV`] of the mean time between sends.
    pub fn early(&self) -> Duration {
        let share = match self.interval_ns / u64::from(TAIL_SHARE_DIV) {
            0 => u64::MAX,
            share => share,
        };
        Duration::from_nanos(u64::from(self.early_ns).min(share))
    }

    /// Folds in one wake-up that came `late` after the timer's deadline.
    pub fn learn(&mut self, late: Duration) {
        let cap = self.cap_ns();
        let late = u32::try_from(late.as_nanos()).unwrap_or(u32::MAX).min(cap);
        self.window[self.next] = late;
        self.next = (self.next + 1) % WAKE_WINDOW;
        self.len = (self.len + 1).min(WAKE_WINDOW);
        let mut sorted = self.window;
        let held = &mut sorted[..self.len];
        let rank = (self.len - 1) * usize::from(self.tune.quantile_permille.min(1_000)) / 1_000;
        self.early_ns = *held.select_nth_unstable(rank).1;
    }

    /// Notes a send (a wait that ended) at `now`, for the time between sends.
    pub fn sent(&mut self, now: Instant) {
        if let Some(since) = self.last_send.and_then(|last| now.checked_duration_since(last)) {
            let since_ns = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX);
            self.interval_ns = match self.interval_ns {
                0 => since_ns.max(1),
                mean => (mean - mean / 8 + since_ns / 8).max(1),
            };
        }
        self.last_send = Some(now);
    }
}

thread_local! {
    /// This thread's early wake: the wake-up delay belongs to the thread
    /// (its runtime's event loop), not to one worker, and a thread sees
    /// every worker's wake-ups, so it learns `rate ÷ threads` times a
    /// second rather than `rate ÷ streams`.
    static EARLY: std::cell::RefCell<Option<EarlyWake>> = const { std::cell::RefCell::new(None) };
}

/// How early `tune`'s timer is set on this thread now.
fn early_here(tune: Tune) -> Duration {
    EARLY.with(|e| {
        e.borrow()
            .filter(|w| w.tune == tune)
            .map_or(Duration::ZERO, |w| w.early())
    })
}

/// Applies `f` to this thread's early wake for `tune` (a fresh one if the
/// thread had none or another tune's).
fn with_here(tune: Tune, f: impl FnOnce(&mut EarlyWake)) {
    EARLY.with(|e| {
        let mut e = e.borrow_mut();
        let wake = match e.as_mut() {
            Some(w) if w.tune == tune => w,
            _ => e.insert(EarlyWake::new(tune)),
        };
        f(wake);
    });
}

impl Kind {
    /// The kind [`PACER_ENV`] names (read once); the default for anything else.
    pub fn from_env() -> Kind {
        static KIND: std::sync::OnceLock<Kind> = std::sync::OnceLock::new();
        *KIND.get_or_init(|| match std::env::var(PACER_ENV).as_deref() {
            Ok("tail") => Kind::Tail,
            Ok("timerfd") => Kind::TimerFd,
            Ok("tokio") => Kind::Tokio,
            Ok("timerfd-tail-p90") => Kind::TimerFdTail(Tune::P90),
            Ok("timerfd-tail-low") => Kind::TimerFdTail(Tune::LOW),
            _ => Kind::TimerFdTail(Tune::DEFAULT),
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

    use super::{early_here, precise_plan, with_here, Kind, Plan, Tune, MAX_TIMERFDS};

    /// `timerfd`s open now, against [`MAX_TIMERFDS`].
    static OPEN: AtomicUsize = AtomicUsize::new(0);

    #[derive(Debug)]
    pub struct TimerFd {
        fd: AsyncFd<OwnedFd>,
        /// The deadline the timer is armed for (re-arming costs a syscall,
        /// and a worker waits for the same deadline over many events).
        armed: Option<Instant>,
        /// `timerfd-tail`: how this thread learns how early to wake (then
        /// it yields to the deadline).
        tune: Option<Tune>,
    }

    impl TimerFd {
        /// The timer of `kind` (None: not a timerfd kind, or [`MAX_TIMERFDS`] are open).
        pub fn new(kind: Kind) -> io::Result<Option<Self>> {
            let tune = match kind {
                Kind::TimerFd => None,
                Kind::TimerFdTail(tune) => Some(tune),
                Kind::Tail | Kind::Tokio => return Ok(None),
            };
            if OPEN.fetch_add(1, Ordering::Relaxed) >= MAX_TIMERFDS {
                OPEN.fetch_sub(1, Ordering::Relaxed);
                return Ok(None);
            }
            let made = TimerFd::open(tune);
            if made.is_err() {
                OPEN.fetch_sub(1, Ordering::Relaxed);
            }
            made.map(Some)
        }

        fn open(tune: Option<Tune>) -> io::Result<Self> {
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
                tune,
            })
        }

        pub async fn until(&mut self, due: Instant) {
            self.wait(due).await;
            if let Some(tune) = self.tune {
                let now = Instant::now();
                with_here(tune, |e| e.sent(now));
            }
        }

        async fn wait(&mut self, due: Instant) {
            loop {
                let early = self.tune.map_or(Duration::ZERO, early_here);
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
                    if let Some(tune) = self.tune {
                        let late = Instant::now().saturating_duration_since(target);
                        with_here(tune, |e| e.learn(late));
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
    fn the_early_wake_is_the_tuned_quantile_of_recent_delays() {
        let us = Duration::from_micros;
        let mut p90 = EarlyWake::new(Tune::P90);
        let mut median = EarlyWake::new(Tune::DEFAULT);
        assert_eq!(p90.early(), Duration::ZERO);
        // Delays 1..=100 µs, shuffled: p90 ≈ 90 µs, the median ≈ 50 µs.
        for k in 0..100u64 {
            let late = us((k * 37) % 100 + 1);
            p90.learn(late);
            median.learn(late);
        }
        // Only the last WAKE_WINDOW delays count.
        let mut sorted: Vec<u64> = (100 - WAKE_WINDOW as u64..100)
            .map(|k| (k * 37) % 100 + 1)
            .collect();
        sorted.sort_unstable();
        let q = |q: usize| us(sorted[(sorted.len() - 1) * q / 1000]);
        assert_eq!(p90.early(), q(900));
        assert_eq!(median.early(), q(usize::from(EARLY_QUANTILE_PERMILLE)));
        assert!(p90.early() > median.early());
    }

    #[test]
    fn the_early_wake_is_capped_and_forgets_old_delays() {
        let us = Duration::from_micros;
        let mut e = EarlyWake::new(Tune::DEFAULT);
        // A loaded machine's multi-ms wake-ups count as the cap, no more.
        for _ in 0..WAKE_WINDOW {
            e.learn(us(5_000));
        }
        assert_eq!(e.early(), MAX_EARLY);
        // A window of fast wake-ups later, the slow ones are forgotten.
        for _ in 0..WAKE_WINDOW {
            e.learn(us(20));
        }
        assert_eq!(e.early(), us(20));
        let mut low = EarlyWake::new(Tune::LOW);
        for _ in 0..WAKE_WINDOW {
            low.learn(us(80));
        }
        assert_eq!(low.early(), us(50), "the old settings' 50 µs cap");
    }

    /// Sends 200 µs apart (5,000/s on one thread): the tail gets at most a
    /// quarter of that, however late the wake-ups come.
    #[test]
    fn the_tail_takes_at_most_its_share_of_the_time_between_sends() {
        let us = Duration::from_micros;
        let base = Instant::now();
        let mut e = EarlyWake::new(Tune::DEFAULT);
        for k in 0..200u64 {
            e.learn(us(250));
            e.sent(base + us(200 * k));
        }
        assert_eq!(e.early(), us(200 / u64::from(TAIL_SHARE_DIV)));
        // Sends 2 ms apart again (500/s): the share (500 µs) no longer binds.
        for k in 0..200u64 {
            e.sent(base + us(40_000 + 2_000 * k));
        }
        assert_eq!(e.early(), us(250));
        // Before a second send there is no interval: the quantile alone.
        let mut fresh = EarlyWake::new(Tune::DEFAULT);
        fresh.learn(us(90));
        fresh.sent(base);
        assert_eq!(fresh.early(), us(90));
    }

    /// Every thread learns alone, and a change of tune starts afresh.
    #[test]
    fn each_thread_learns_its_own_early_wake() {
        let us = Duration::from_micros;
        with_here(Tune::P90, |e| e.learn(us(70)));
        assert_eq!(early_here(Tune::P90), us(70));
        assert_eq!(early_here(Tune::DEFAULT), Duration::ZERO);
        let other = std::thread::spawn(move || early_here(Tune::P90)).join().unwrap();
        assert_eq!(other, Duration::ZERO);
        with_here(Tune::DEFAULT, |e| e.learn(us(10)));
        assert_eq!(early_here(Tune::DEFAULT), us(10));
        assert_eq!(early_here(Tune::P90), Duration::ZERO);
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
            if let Some(mut tail) = timerfd::TimerFd::new(Kind::TimerFdTail(Tune::DEFAULT)).unwrap() {
                let start = Instant::now();
                for k in 0..50u64 {
                    let due = start + Duration::from_micros(100 * k);
                    tail.until(due).await;
                    assert!(Instant::now() >= due, "op {k} left early (timerfd-tail)");
                }
            }
        });
    }

    /// The tail yields: other tasks on the thread run while a worker waits
    /// out its tail (here a tail of the whole wait, with a test-sized cap).
    #[cfg(target_os = "linux")]
    #[test]
    fn the_tail_lets_the_other_tasks_run() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let tune = Tune {
            quantile_permille: 500,
            max_early_us: 60_000,
        };
        runtime.block_on(async {
            with_here(tune, |e| e.learn(Duration::from_millis(60)));
            let Some(mut tail) = timerfd::TimerFd::new(Kind::TimerFdTail(tune)).unwrap() else {
                return; // (only while the cap test holds every timerfd)
            };
            let ran = std::sync::Arc::new(AtomicU64::new(0));
            let other = tokio::spawn({
                let ran = std::sync::Arc::clone(&ran);
                async move {
                    loop {
                        ran.fetch_add(1, Ordering::Relaxed);
                        tokio::task::yield_now().await;
                    }
                }
            });
            let due = Instant::now() + Duration::from_millis(30);
            tail.until(due).await;
            assert!(Instant::now() >= due);
            assert!(ran.load(Ordering::Relaxed) > 0, "the tail starved the other task");
            other.abort();
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
