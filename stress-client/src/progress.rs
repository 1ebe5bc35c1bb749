//! The live progress lines on stderr (only when it is a terminal and not
//! `--quiet`): during the load, elapsed time, ops/s over the last tick, the
//! corrected p99 of the last whole second (from the timeline collector,
//! which runs whenever the line is shown) and errors so far; during setup,
//! settling and final reads, a counted bar per phase.

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

/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(250);
/// The bar of a counted phase (opening accounts, settling, final reads).
const PHASE_TEMPLATE: &str = "{spinner} {msg:<21} {bar:20} {pos}/{len} ({elapsed}, eta {eta})";

/// A running progress line; dropped or finished, it clears itself.
pub struct Progress {
    bar: ProgressBar,
    task: JoinHandle<()>,
}

impl Progress {
    /// Whether the line is shown: stderr is a terminal and `quiet` is off.
    pub fn shown(quiet: bool) -> bool {
        !quiet && std::io::stderr().is_terminal()
    }

    /// Starts the line if it is [shown](Progress::shown).
    pub fn start(live: Arc<Live>, quiet: bool) -> Option<Self> {
        if !Progress::shown(quiet) {
            return None;
        }
        let bar = ProgressBar::new_spinner();
        let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        let task = tokio::spawn(tick(bar.clone(), live));
        Some(Progress { bar, task })
    }

    /// Stops and clears the line.
    pub fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
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
    let p99 = p99_us.map_or_else(|| "-".to_owned(), |us| format!("{us} us"));
    format!("{ops} ops  {rate:.0} ops/s  p99 {p99} (last second)  {errors} errors")
}

async fn tick(bar: ProgressBar, live: Arc<Live>) {
    let mut last = (Instant::now(), 0u64);
    loop {
        tokio::time::sleep(TICK).await;
        let now = Instant::now();
        let ops = live.ops.load(Ordering::Relaxed);
        let errors = live.errors.load(Ordering::Relaxed);
        let rate = ops.saturating_sub(last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-9);
        let p99 = live.last_second_p99_us_plus_1.load(Ordering::Relaxed);
        bar.set_message(line(ops, rate, p99.checked_sub(1), errors));
        bar.tick();
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
            "1200 ops  500 ops/s  p99 830 us (last second)  2 errors"
        );
        assert_eq!(
            line(0, 0.0, None, 0),
            "0 ops  0 ops/s  p99 - (last second)  0 errors"
        );
    }
}
