//! Driving the load: spread `--streams` workers over the connections, give
//! each its seeded generator, schedule and recorder, run them all at once,
//! and hand back their recorders when the budget is spent. On the fast path
//! ([`crate::h2fast`]) they run on the load threads of [`threads`]; over
//! tonic, as tasks of the run's runtime.

pub mod extras;
pub mod invalid;
pub mod pacer;
pub mod requests;
pub mod schedule;
pub mod stream;
pub mod threads;
pub mod worker;

use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// The run clock's origin and the start of the load.
    pub start: Instant,
    pub live: Arc<Live>,
    pub intervals: Option<UnboundedSender<(u64, Interval)>>,
}

/// A worker's spec, generator, schedule, recorder and extra calls.
pub type Parts = (WorkerSpec, Generator, Schedule, Recorder, Extras);

/// Runs every worker to the end and returns their recorders. A worker that
/// panics is a stress-client bug: the run ends without a verdict (exit 2)
/// rather than blaming the server for the ops it did not record.
pub async fn drive(load: Load<'_>) -> Result<Vec<Recorder>, String> {
    let workers = u32::try_from(load.args.streams).expect("--streams is bounded by validate");
    let mix = Arc::new(Mix {
        amounts: load.args.amount.clone(),
        deposit_ratio: load.args.deposit_ratio,
        transfer_ratio: load.args.transfer_ratio,
        wait_for_funds: load.args.wait_for_funds,
    });
    let parts = (0..workers).map(|index| {
        let (spec, generator, schedule, rec) = worker_parts(&load, &mix, index, workers);
        (spec, generator, schedule, rec, extras_of(&load, index))
    });
    match crate::transport::fast_path(load.targets, load.args.timeout) {
        Some(headers) => threads::run(shares(&load, parts.collect()), headers).await,
        None => drive_here(parts.collect()).await,
    }
}

/// Splits the workers and connections over the load threads: connection
/// `c` and its workers go to thread `c % threads`.
fn shares(load: &Load<'_>, parts: Vec<Parts>) -> Vec<threads::Share> {
    let conns = load.channels.len().max(1);
    let count = threads::count(conns);
    let mut shares: Vec<threads::Share> = (0..count)
        .map(|_| threads::Share {
            conns: Vec::new(),
            workers: Vec::new(),
        })
        .collect();
    for c in 0..conns {
        let target = load.targets[c % load.targets.len().max(1)].clone();
        shares[c % count].conns.push((c, target));
    }
    for part in parts {
        shares[part.0.connection % count].workers.push(part);
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
    index: u32,
    workers: u32,
) -> (WorkerSpec, Generator, Schedule, Recorder) {
    let args = load.args;
    let budget = match (args.requests, &args.stages) {
        (Some(total), _) => Budget::Ops(share(total, index, workers)),
        (None, Some(plan)) => Budget::Until(load.start + plan.total()),
        (None, None) => Budget::Until(load.start + args.warmup + args.duration),
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
    let warmup_end = load.start + args.warmup;
    let mut rec = Recorder::new(index, load.start, warmup_end, sink, Arc::clone(&load.live))
        .streamed(args.mode == Mode::Stream);
    rec.stages = args.stages.as_ref().map(|plan| StageTally::new(plan.ends_ns()));
    let schedule = match &args.stages {
        Some(plan) => Schedule::staged(Arc::new(plan.clone()), load.start, index, workers),
        None => Schedule::new(args.rate, load.start, index, workers),
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
