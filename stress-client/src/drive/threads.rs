//! The runtime shape of the fast path: the load runs on a few OS threads,
//! each with its own single-threaded tokio runtime that owns a share of the
//! connections (their connection tasks) and the workers on them, so an
//! op is sent, answered and recorded on one thread without cross-thread
//! wake-ups or work stealing. (A 2-worker runtime doubled the client's CPU
//! per op in a measurement on 2 cores; see bench/RESULTS.md.)
//!
//! Every thread connects first; the load starts only when all have, and a
//! connection failure anywhere ends the run before any op is sent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use tokio::sync::oneshot;

use super::worker::{self, WorkerSpec};
use super::{join_workers, worker_failed, Parts};
use crate::h2fast::{self, CallHeaders, Conn};
use crate::recorder::Recorder;

/// Cores per load thread when `--client-threads` is not given: the client
/// takes at most half the machine (the server under test may share it).
const CORES_PER_THREAD: usize = 2;

/// How many load threads for `connections` connections.
pub fn count(connections: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let wanted = crate::transport::client_threads().unwrap_or(cores / CORES_PER_THREAD);
    wanted.clamp(1, connections.max(1))
}

/// One thread's share: its connections (index into the run's, and target)
/// and its workers' parts.
pub struct Share {
    pub conns: Vec<(usize, String)>,
    pub workers: Vec<Parts>,
}

/// What every thread shares: call headers and the start line.
struct Common {
    headers: CallHeaders,
    ready: Barrier,
    failed: AtomicBool,
    first_error: Mutex<Option<String>>,
}

/// Runs every share on its own thread; the recorders of all workers, or
/// why the load could not run.
pub async fn run(shares: Vec<Share>, headers: CallHeaders) -> Result<Vec<Recorder>, String> {
    let common = Arc::new(Common {
        headers,
        ready: Barrier::new(shares.len()),
        failed: AtomicBool::new(false),
        first_error: Mutex::new(None),
    });
    let mut done = Vec::with_capacity(shares.len());
    for (i, share) in shares.into_iter().enumerate() {
        let (tx, rx) = oneshot::channel();
        let common = Arc::clone(&common);
        std::thread::Builder::new()
            .name(format!("load-{i}"))
            .spawn(move || {
                let _ = tx.send(thread_main(share, &common));
            })
            .map_err(|e| format!("cannot start a load thread: {e}"))?;
        done.push(rx);
    }
    let mut recorders = Vec::new();
    for rx in done {
        recorders.extend(rx.await.map_err(|_| worker_failed("a load thread panicked"))??);
    }
    let first_error = common.first_error.lock().map(|mut e| e.take());
    match first_error {
        Ok(Some(e)) => Err(e),
        _ => Ok(recorders),
    }
}

/// One load thread: connect, wait for all threads, run the workers.
fn thread_main(share: Share, common: &Common) -> Result<Vec<Recorder>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            common.fail(format!("cannot start a load runtime: {e}"));
            common.ready.wait();
            return Ok(Vec::new());
        }
    };
    let conns = runtime.block_on(connect_all(&share.conns, &common.headers));
    if let Err(e) = &conns {
        common.fail(e.clone());
    }
    common.ready.wait();
    let conns = match conns {
        Ok(conns) if !common.failed.load(Ordering::SeqCst) => conns,
        _ => return Ok(Vec::new()),
    };
    runtime.block_on(run_workers(share.workers, &conns))
}

impl Common {
    fn fail(&self, e: String) {
        self.failed.store(true, Ordering::SeqCst);
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert(e);
        }
    }
}

/// Opens this thread's connections, by their index in the run.
async fn connect_all(conns: &[(usize, String)], headers: &CallHeaders) -> Result<Vec<(usize, Conn)>, String> {
    let mut open = Vec::with_capacity(conns.len());
    for (index, target) in conns {
        open.push((*index, h2fast::connect(target, headers).await?));
    }
    Ok(open)
}

/// Spawns the workers on this thread's runtime and waits for them all.
async fn run_workers(workers: Vec<Parts>, conns: &[(usize, Conn)]) -> Result<Vec<Recorder>, String> {
    let handles: Vec<_> = workers
        .into_iter()
        .map(|(mut spec, generator, schedule, rec, extras)| {
            spec.fast = conn_of(&spec, conns);
            tokio::spawn(worker::run(spec, generator, schedule, rec, extras))
        })
        .collect();
    join_workers(handles).await
}

fn conn_of(spec: &WorkerSpec, conns: &[(usize, Conn)]) -> Option<Conn> {
    conns
        .iter()
        .find(|(index, _)| *index == spec.connection)
        .map(|(_, conn)| conn.clone())
}
