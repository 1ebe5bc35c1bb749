//! Driving the load: spread `--streams` workers over the connections, give
//! each its seeded generator, schedule and recorder, run them all at once,
//! and hand back their recorders when the budget is spent. On the fast path
//! ([`crate::h2fast`]) they run on the load threads of [`threads`]; over
//! tonic, as tasks of the run's runtime.
//!
//! The run clock starts only once every connection is open: a schedule
//! whose origin came before the fast path's connections counted their setup
//! as the first sends' lateness (and, corrected, as their latency).

pub mod extras;
pub mod invalid;
pub mod pacer;
pub mod requests;
pub mod schedule;
pub mod small_pages;
pub mod stream;
pub mod threads;
pub mod worker;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc::UnboundedSender;
use tonic::transport::Channel;

use crate::cli::{Mode, RunArgs};
use crate::progress::Live;
use crate::recorder::{IntervalSink, Recorder};
use crate::stage_tally::StageTally;
use crate::timeline::Interval;
use crate::workload::{Generator, Mix};
use extras::Extras;
pub use requests::Names;
use schedule::Schedule;
pub use worker::Budget;
use worker::WorkerSpec;

/// Length of one interval of the timeline (and the HdrHistogram interval log).
pub const HISTOGRAM_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// What the drive phase needs from the run.
pub struct Load<'a> {
    pub args: &'a RunArgs,
    pub channels: &'a [Channel],
    /// The servers: connection `i` goes to `targets[i % targets.len()]`.
    pub targets: &'a [String],
    pub names: Arc<Names>,
    pub live: Arc<Live>,
    pub intervals: Option<UnboundedSender<(u64, Interval)>>,
}

/// A worker's spec, generator, schedule, recorder and extra calls.
pub type Parts = (WorkerSpec, Generator, Schedule, Recorder, Extras);

/// The run clock, read when the load starts (every connection open).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// The origin: the schedule's zero and the start of the load.
    pub start: Instant,
    /// The wall clock at `start` (the report's `started_at`).
    pub wall: SystemTime,
    /// Both clocks, for the history.
    pub anchor: crate::history::Anchor,
}

impl Clock {
    fn now() -> Clock {
        let (start, wall) = (Instant::now(), SystemTime::now());
        Clock {
            start,
            wall,
            anchor: crate::history::Anchor::now(start),
        }
    }
}

/// Runs every worker to the end; their recorders and the run clock. A
/// worker that panics is a stress-client bug: the run ends without a
/// verdict (exit 2) rather than blaming the server for the ops it did not
/// record.
pub async fn drive(load: Load<'_>) -> Result<(Vec<Recorder>, Clock), String> {
    let _small_pages = small_pages::SmallPages::during_load();
    match crate::transport::fast_path(load.targets, load.args.timeout) {
        Some(headers) => {
            let count = threads::count(load.channels.len().max(1));
            let connected = threads::connect(conn_shares(&load, count), headers).await?;
            let clock = Clock::now();
            let recorders = connected
                .run(worker_shares(all_parts(&load, clock.start), count))
                .await?;
            Ok((recorders, clock))
        }
        None => {
            let clock = Clock::now();
            Ok((drive_here(all_parts(&load, clock.start)).await?, clock))
        }
    }
}

/// Every worker's parts, with the run clock's origin `start`.
fn all_parts(load: &Load<'_>, start: Instant) -> Vec<Parts> {
    let workers = u32::try_from(load.args.streams).expect("--streams is bounded by validate");
    let mix = Arc::new(Mix {
        amounts: load.args.amount.clone(),
        deposit_ratio: load.args.deposit_ratio,
        transfer_ratio: load.args.transfer_ratio,
        wait_for_funds: load.args.wait_for_funds,
    });
    (0..workers)
        .map(|index| {
            let (spec, generator, schedule, rec) = worker_parts(load, &mix, start, index, workers);
            (spec, generator, schedule, rec, extras_of(load, index))
        })
        .collect()
}

/// The connections of each of `count` load threads: connection `c` goes
/// to thread `c % count` (by index in the run, with its target).
fn conn_shares(load: &Load<'_>, count: usize) -> Vec<Vec<(usize, String)>> {
    let mut shares = vec![Vec::new(); count];
    for c in 0..load.channels.len().max(1) {
        let target = load.targets[c % load.targets.len().max(1)].clone();
        shares[c % count].push((c, target));
    }
    shares
}

/// The workers of each of `count` load threads: a worker runs on its
/// connection's thread.
fn worker_shares(parts: Vec<Parts>, count: usize) -> Vec<Vec<Parts>> {
    let mut shares: Vec<Vec<Parts>> = (0..count).map(|_| Vec::new()).collect();
    for part in parts {
        shares[part.0.connection % count].push(part);
    }
    shares
}

/// Runs the workers as tasks of the current runtime (the tonic stack).
async fn drive_here(parts: Vec<Parts>) -> Result<Vec<Recorder>, String> {
    let handles: Vec<_> = parts
        .into_iter()
        .map(|(spec, generator, schedule, rec, extras)| {
            tokio::spawn(worker::run(spec, generator, schedule, rec, extras))
        })
        .collect();
    join_workers(handles).await
}

/// Waits for every worker task; their recorders, or why one failed (a
/// panicking worker is a stress-client bug: then there is no verdict).
async fn join_workers(handles: Vec<tokio::task::JoinHandle<Recorder>>) -> Result<Vec<Recorder>, String> {
    let mut recorders = Vec::with_capacity(handles.len());
    let mut failed = None;
    for handle in handles {
        match handle.await {
            Ok(rec) => recorders.push(rec),
            Err(e) => failed = failed.or(Some(e.to_string())),
        }
    }
    failed.map_or(Ok(recorders), |e| Err(worker_failed(&e)))
}

/// The error of a run whose load worker failed with `e`.
fn worker_failed(e: &str) -> String {
    format!("a load worker failed ({e}); this is a stress-client bug, so there is no verdict")
}

/// Worker `index`'s extra calls (reads, duplicate sends, invalid calls).
fn extras_of(load: &Load<'_>, index: u32) -> Extras {
    let args = load.args;
    let accounts = u32::try_from(load.names.accounts.len()).expect("--accounts is bounded by validate");
    let ratios = extras::Ratios {
        read: args.read_ratio,
        duplicate: args.duplicate_ratio,
        invalid: args.invalid_ratio,
        token: args.transport.token.is_some(),
    };
    Extras::new(args.seed, index, ratios, accounts, args.timeout)
}

/// Everything worker `index` of `workers` starts with.
fn worker_parts(
    load: &Load<'_>,
    mix: &Arc<Mix>,
    start: Instant,
    index: u32,
    workers: u32,
) -> (WorkerSpec, Generator, Schedule, Recorder) {
    let args = load.args;
    let budget = match (args.requests, &args.stages) {
        (Some(total), _) => Budget::Ops(share(total, index, workers)),
        (None, Some(plan)) => Budget::Until(start + plan.total()),
        (None, None) => Budget::Until(start + args.warmup + args.duration),
    };
    let connection = index as usize % load.channels.len();
    let spec = WorkerSpec {
        index,
        connection,
        client: crate::transport::bank(load.channels[connection].clone()),
        fast: None,
        mode: args.mode,
        pipeline: args.pipeline,
        timeout: args.timeout,
        budget,
        names: Arc::clone(&load.names),
    };
    let interval_ns = u64::try_from(HISTOGRAM_LOG_INTERVAL.as_nanos()).unwrap_or(u64::MAX);
    let sink = load
        .intervals
        .clone()
        .map(|tx| IntervalSink::new(tx, interval_ns));
    let warmup_end = start + args.warmup;
    let mut rec = Recorder::new(index, start, warmup_end, sink, Arc::clone(&load.live))
        .streamed(args.mode == Mode::Stream);
    rec.stages = args.stages.as_ref().map(|plan| StageTally::new(plan.ends_ns()));
    let schedule = match &args.stages {
        Some(plan) => Schedule::staged(Arc::new(plan.clone()), start, index, workers),
        None => Schedule::new(args.rate, start, index, workers),
    };
    let accounts = u32::try_from(load.names.accounts.len()).expect("--accounts is bounded by validate");
    let generator = Generator::new(Arc::clone(mix), accounts, args.seed, index);
    (spec, generator, schedule, rec)
}

/// Worker `index`'s share of `total` ops: as even as possible.
fn share(total: u64, index: u32, workers: u32) -> u64 {
    let workers = u64::from(workers.max(1));
    total / workers + u64::from(u64::from(index) < total % workers)
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn shares_add_up() {
        for (total, workers) in [(10, 3), (1, 4), (1000, 64), (7, 7)] {
            let sum: u64 = (0..workers).map(|i| share(total, i, workers)).sum();
            assert_eq!(sum, total);
        }
    }
}
