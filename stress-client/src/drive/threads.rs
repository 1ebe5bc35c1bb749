//! The runtime shape of the fast path: the load runs on a few OS threads,
//! each with its own single-threaded tokio runtime that owns a share of the
//! connections (their connection tasks) and the workers on them, so an
//! op is sent, answered and recorded on one thread without cross-thread
//! wake-ups or work stealing. (A 2-worker runtime doubled the client's CPU
//! per op in a measurement on 2 cores; see bench/RESULTS.md.)
//!
//! Every thread connects first ([`connect`]); the run clock is read and the
//! workers are made only when all have ([`Connected::run`]), and a
//! connection failure anywhere ends the run before any op is sent.

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

/// The load threads, each with its connections open, waiting for workers.
pub struct Connected {
    threads: Vec<Thread>,
}

/// One waiting load thread: where to send its workers and where its
/// recorders come back.
struct Thread {
    workers: oneshot::Sender<Vec<Parts>>,
    done: oneshot::Receiver<Result<Vec<Recorder>, String>>,
}

/// Starts one thread per share of connections (index in the run, target)
/// and opens them; returns when all are open, or with the first failure
/// (then every thread ends without sending anything).
pub async fn connect(shares: Vec<Vec<(usize, String)>>, headers: CallHeaders) -> Result<Connected, String> {
    let mut threads = Vec::with_capacity(shares.len());
    let mut opened = Vec::with_capacity(shares.len());
    for (i, conns) in shares.into_iter().enumerate() {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (workers_tx, workers_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let headers = headers.clone();
        std::thread::Builder::new()
            .name(format!("load-{i}"))
            .spawn(move || {
                let _ = done_tx.send(thread_main(&conns, &headers, ready_tx, workers_rx));
            })
            .map_err(|e| format!("cannot start a load thread: {e}"))?;
        threads.push(Thread {
            workers: workers_tx,
            done: done_rx,
        });
        opened.push(ready_rx);
    }
    let mut first_error = None;
    for ready in opened {
        let result = ready
            .await
            .unwrap_or_else(|_| Err(worker_failed("a load thread panicked")));
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    // Dropping `threads` drops their senders: each thread then ends.
    first_error.map_or(Ok(Connected { threads }), Err)
}

impl Connected {
    /// Runs `shares[i]`'s workers on thread `i`; every worker's recorder.
    pub async fn run(self, shares: Vec<Vec<Parts>>) -> Result<Vec<Recorder>, String> {
        let mut done = Vec::with_capacity(self.threads.len());
        for (thread, workers) in self.threads.into_iter().zip(shares) {
            // A thread that has ended already says why through `done`.
            let _ = thread.workers.send(workers);
            done.push(thread.done);
        }
        let mut recorders = Vec::new();
        for rx in done {
            recorders.extend(rx.await.map_err(|_| worker_failed("a load thread panicked"))??);
        }
        Ok(recorders)
    }
}

/// One load thread: connect, say so, wait for the workers, run them.
fn thread_main(
    conns: &[(usize, String)],
    headers: &CallHeaders,
    ready: oneshot::Sender<Result<(), String>>,
    workers: oneshot::Receiver<Vec<Parts>>,
) -> Result<Vec<Recorder>, String> {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot start a load runtime: {e}")));
            return Ok(Vec::new());
        }
    };
    runtime.block_on(async move {
        let conns = match connect_all(conns, headers).await {
            Ok(conns) => conns,
            Err(e) => {
                let _ = ready.send(Err(e));
                return Ok(Vec::new());
            }
        };
        let _ = ready.send(Ok(()));
        // Waiting inside the runtime keeps the connections' tasks running.
        match workers.await {
            Ok(workers) => run_workers(workers, &conns).await,
            Err(_) => Ok(Vec::new()),
        }
    })
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
