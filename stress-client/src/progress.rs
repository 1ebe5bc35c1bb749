//! The live progress on stderr (off with `--quiet`): during the load,
//! elapsed time, ops/s, the corrected p99 of the last whole second (from
//! the timeline collector, which runs whenever progress is shown) and
//! errors so far. On a terminal it is one line redrawn in place, and
//! setup, settling and final reads get a counted bar per phase; off a
//! terminal (a CI log, a file) it is a plain line every [`PLAIN_PERIOD`],
//! never a `\r` or an escape code.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;

/// Counters the progress line reads while the run goes on.
#[derive(Debug, Default)]
pub struct Live {
    pub ops: AtomicU64,
    pub errors: AtomicU64,
    /// The p99 (µs) of the last whole second the timeline collected, plus
    /// one (0: none yet).
    pub last_second_p99_us_plus_1: AtomicU64,
}

/// How often the line is redrawn on a terminal.
const TICK: Duration = Duration::from_millis(250);
/// How often a plain line is printed off a terminal. Why 5 s: a log keeps
/// every line, so a line a second is 3,600 lines an hour; every 5 s keeps a
/// 10-minute soak at 120 lines and still shows a stall within seconds.
pub const PLAIN_PERIOD: Duration = Duration::from_secs(5);
/// The bar of a counted phase (opening accounts, settling, final reads).
const PHASE_TEMPLATE: &str = "{spinner} {msg:<21} {bar:20} {pos}/{len} ({elapsed}, eta {eta})";

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// One line redrawn in place (stderr is a terminal).
    Terminal,
    /// A plain line every [`PLAIN_PERIOD`] (stderr is not a terminal).
    Plain,
}

impl Shown {
    /// How progress is shown, if at all: never with `quiet`.
    pub fn pick(quiet: bool, terminal: bool) -> Option<Shown> {
        match (quiet, terminal) {
            (true, _) => None,
            (false, true) => Some(Shown::Terminal),
            (false, false) => Some(Shown::Plain),
        }
    }
}

/// Running progress; finished, it clears its line (on a terminal).
pub struct Progress {
    bar: Option<ProgressBar>,
    task: JoinHandle<()>,
}

impl Progress {
    /// Whether progress is shown: `quiet` is off.
    pub fn shown(quiet: bool) -> bool {
        Shown::pick(quiet, std::io::stderr().is_terminal()).is_some()
    }

    /// Starts the progress if it is [shown](Progress::shown).
    pub fn start(live: Arc<Live>, quiet: bool) -> Option<Self> {
        match Shown::pick(quiet, std::io::stderr().is_terminal())? {
            Shown::Terminal => {
                let bar = ProgressBar::new_spinner();
                let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
                bar.set_style(style);
                let task = tokio::spawn(tick(bar.clone(), live));
                Some(Progress { bar: Some(bar), task })
            }
            Shown::Plain => Some(Progress {
                bar: None,
                task: tokio::spawn(plain(live)),
            }),
        }
    }

    /// Stops and clears the line.
    pub fn finish(self) {
        self.task.abort();
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A counted phase's bar: `inc` as items complete. A no-op when hidden.
#[derive(Debug, Clone)]
pub struct PhaseBar(Option<ProgressBar>);

impl PhaseBar {
    /// A bar titled `label` over `total` items, shown if stderr is a
    /// terminal and `quiet` is off.
    pub fn start(label: &str, total: u64, quiet: bool) -> Self {
        if quiet || !std::io::stderr().is_terminal() {
            return PhaseBar(None);
        }
        let bar = ProgressBar::new(total);
        let style =
            ProgressStyle::with_template(PHASE_TEMPLATE).unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(label.to_owned());
        bar.enable_steady_tick(TICK);
        PhaseBar(Some(bar))
    }

    /// A bar that never shows.
    pub fn hidden() -> Self {
        PhaseBar(None)
    }

    /// One more item done.
    pub fn inc(&self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }

    /// Stops and clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// The load's progress line.
fn line(ops: u64, rate: f64, p99_us: Option<u64>, errors: u64) -> String {
    let p99 = p99_us.map_or_else(|| "-".to_owned(), crate::report::units::us);
    format!("{ops} ops  {rate:.0} ops/s  p99 {p99} (last second)  {errors} errors")
}

/// The plain line printed off a terminal, `elapsed` into the run.
fn plain_line(elapsed: Duration, line: &str) -> String {
    format!("stress-client: progress {}s: {line}", elapsed.as_secs())
}

/// What the counters say now: ops so far, ops/s since `last` (when there
/// were `last.1` ops), the p99 of the last second and errors.
fn read(live: &Live, last: (Instant, u64), now: Instant) -> (u64, String) {
    let ops = live.ops.load(Ordering::Relaxed);
    let errors = live.errors.load(Ordering::Relaxed);
    let rate = ops.saturating_sub(last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-9);
    let p99 = live.last_second_p99_us_plus_1.load(Ordering::Relaxed);
    (ops, line(ops, rate, p99.checked_sub(1), errors))
}

async fn tick(bar: ProgressBar, live: Arc<Live>) {
    let mut last = (Instant::now(), 0u64);
    loop {
        tokio::time::sleep(TICK).await;
        let now = Instant::now();
        let (ops, text) = read(&live, last, now);
        bar.set_message(text);
        bar.tick();
        last = (now, ops);
    }
}

/// Off a terminal: a line every [`PLAIN_PERIOD`], ops/s over that period.
async fn plain(live: Arc<Live>) {
    let started = Instant::now();
    let mut last = (started, 0u64);
    loop {
        tokio::time::sleep(PLAIN_PERIOD).await;
        let now = Instant::now();
        let (ops, text) = read(&live, last, now);
        eprintln!("{}", plain_line(now.duration_since(started), &text));
        last = (now, ops);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_rate_p99_and_errors() {
        assert_eq!(
            line(1200, 499.6, Some(830), 2),
            "1200 ops  500 ops/s  p99 830 µs (last second)  2 errors"
        );
        assert_eq!(
            line(9, 1.0, Some(2_500), 0),
            "9 ops  1 ops/s  p99 2.50 ms (last second)  0 errors"
        );
        assert_eq!(
            line(0, 0.0, None, 0),
            "0 ops  0 ops/s  p99 - (last second)  0 errors"
        );
    }

    #[test]
    fn off_a_terminal_the_line_is_plain_and_quiet_silences_both() {
        assert_eq!(Shown::pick(false, true), Some(Shown::Terminal));
        assert_eq!(Shown::pick(false, false), Some(Shown::Plain));
        assert_eq!(Shown::pick(true, true), None);
        assert_eq!(Shown::pick(true, false), None);
        let text = plain_line(Duration::from_millis(10_400), &line(5, 1.0, None, 0));
        assert_eq!(
            text,
            "stress-client: progress 10s: 5 ops  1 ops/s  p99 - (last second)  0 errors"
        );
        assert!(!text.contains('\r') && !text.contains('\u{1b}'));
    }
}
