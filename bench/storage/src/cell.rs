//! One measured cell: an engine, a way of committing (serial or grouped),
//! G records per caller commit, T committing threads, for a fixed time, on a
//! fresh directory. Counts records, durable syncs and each commit's latency.

use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::engine::{dir_bytes, process_write_bytes, Committer, Grouped, Serial};
use crate::kind::Kind;
use crate::workload::record;

/// The slowest commit a histogram holds, in µs (one minute).
const MAX_LATENCY_US: u64 = 60_000_000;
/// Significant figures of the latency histograms.
const LATENCY_SIGFIG: u8 = 3;

/// What a cell varies.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub kind: Kind,
    /// Callers' groups merged into one sync (the server's group commit).
    pub grouped: bool,
    pub group: usize,
    pub threads: usize,
}

impl Spec {
    pub fn mode(&self) -> &'static str {
        if self.grouped {
            "grouped"
        } else {
            "serial"
        }
    }
}

/// What one run of a cell measured.
#[derive(Debug, Clone)]
pub struct Run {
    pub records: u64,
    pub syncs: u64,
    pub elapsed: Duration,
    pub latency: Histogram<u64>,
    /// Bytes of the engine's files afterwards.
    pub bytes: u64,
    /// Bytes written to storage meanwhile (see [`process_write_bytes`]).
    pub written: u64,
}

impl Run {
    pub fn records_per_s(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `spec` for `duration` on a fresh `dir`.
pub fn run(spec: Spec, dir: &Path, duration: Duration) -> Result<Run, String> {
    fresh_dir(dir)?;
    let engine = spec.kind.open(dir)?;
    let committer: Box<dyn Committer> = if spec.grouped {
        Box::new(Grouped::new(engine))
    } else {
        Box::new(Serial::new(engine))
    };
    let written_before = process_write_bytes();
    let started = Instant::now();
    let deadline = started + duration;
    let outcomes: Vec<Result<(u64, Histogram<u64>), String>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..spec.threads)
            .map(|t| {
                let c = committer.as_ref();
                s.spawn(move || worker(c, t as u64, spec.group, deadline))
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker panicked"))
            .collect()
    });
    let elapsed = started.elapsed();
    let syncs = committer.syncs();
    // Before the drop: closing SQLite checkpoints, which is not steady state.
    let written = process_write_bytes().saturating_sub(written_before);
    drop(committer);
    let mut latency = new_histogram();
    let mut records = 0;
    for outcome in outcomes {
        let (n, h) = outcome?;
        records += n;
        latency.add(h).map_err(|e| e.to_string())?;
    }
    Ok(Run {
        records,
        syncs,
        elapsed,
        latency,
        bytes: dir_bytes(dir),
        written,
    })
}

/// Commits groups of `group` records until `deadline`; returns the records
/// committed and each commit's latency in µs.
fn worker(
    c: &dyn Committer,
    thread: u64,
    group: usize,
    deadline: Instant,
) -> Result<(u64, Histogram<u64>), String> {
    let mut latency = new_histogram();
    let mut n = 0u64;
    while Instant::now() < deadline {
        let recs: Vec<_> = (n..n + group as u64).map(|i| record(thread, i)).collect();
        let began = Instant::now();
        c.commit(&recs)?;
        latency.saturating_record(began.elapsed().as_micros() as u64);
        n += group as u64;
    }
    Ok((n, latency))
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, LATENCY_SIGFIG).expect("valid histogram bounds")
}

/// Empties `dir` (creating it).
pub fn fresh_dir(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}
