//! The live progress line on stderr (only when it is a terminal and not
//! `--quiet`): elapsed time, ops/s over the last tick, and errors so far.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;

use crate::recorder::Live;

/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(250);

/// A running progress line; dropped or finished, it clears itself.
pub struct Progress {
    bar: ProgressBar,
    task: JoinHandle<()>,
}

impl Progress {
    /// Starts the line if stderr is a terminal and `quiet` is off.
    pub fn start(live: Arc<Live>, quiet: bool) -> Option<Self> {
        if quiet || !std::io::stderr().is_terminal() {
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

async fn tick(bar: ProgressBar, live: Arc<Live>) {
    let mut last = (Instant::now(), 0u64);
    loop {
        tokio::time::sleep(TICK).await;
        let now = Instant::now();
        let ops = live.ops.load(Ordering::Relaxed);
        let errors = live.errors.load(Ordering::Relaxed);
        let rate = (ops - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-9);
        bar.set_message(format!("{ops} ops  {rate:.0} ops/s  {errors} errors"));
        bar.tick();
        last = (now, ops);
    }
}
