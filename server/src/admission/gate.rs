//! The per-account admission gate: an async FIFO in front of the blocking pool.
//! At most `max_blocking` ops of one account are admitted to run; the rest
//! wait here as futures, at no thread cost, up to `max_queued` in all.
//!
//! Admitted ops that lock only this account run on the account's *runner*
//! (a withdrawal short of funds parks as a future, never on it): one
//! blocking-pool thread that runs them one after another, in order, for as long as any are queued, then goes back to the
//! pool. So on a hot account the next op starts on the thread that just let
//! go of the lock: no thread wake-up and no lock hand-off between threads per
//! op (a sleeping waiter takes tens of microseconds to wake), and one thread
//! per busy account instead of `max_blocking`.
//!
//! With `--batch-max N` > 1 the runner takes up to N queued deposits and
//! withdrawals at once and hands them to the backend's [`BatchApply`] (in
//! memory: one lock hold, one processing delay, one sync for all of them,
//! group commit; in PostgreSQL: one transaction).
//!
//! The gates live here, in admission ([`Gates`] maps an account id to its
//! gate); a gate is the backend's [`backend::Runner`]: the backends know nothing of
//! admission, only that a runner runs tasks in order.
//!
//! How long ops wait at a gate before they are admitted is reported to a
//! [`WaitObserver`] if one is set (`bank_gate_wait_seconds`): with the
//! default `--max-blocking-per-account` 2, this is where a hot account's ops
//! queue, not at its lock.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::backend::ledger::{IdHasher, LedgerError, LedgerResult};
use crate::backend::runner::{self as backend, run_on, Batched, Task};

/// Told how long each admitted op waited at its gate (from its arrival at
/// [`Gate::admit`] to its admission); refused ops are not reported.
pub type WaitObserver = Arc<dyn Fn(Duration) + Send + Sync>;

/// The observer every gate of a [`Gates`] shares, set once (or never).
#[derive(Clone, Default)]
struct SharedObserver(Arc<OnceLock<WaitObserver>>);

impl std::fmt::Debug for SharedObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.0.get().is_some();
        f.write_str(if set {
            "WaitObserver(set)"
        } else {
            "WaitObserver(none)"
        })
    }
}

/// Every account's gate, made on the account's first op. Accounts are never
/// closed, so this holds at most one gate per open account.
#[derive(Debug)]
pub struct Gates {
    /// Looked up on every op: hashed with [`IdHasher`].
    gates: RwLock<HashMap<Arc<str>, Arc<Gate>, IdHasher>>,
    max_blocking: usize,
    max_queued: usize,
    batch_max: usize,
    observer: SharedObserver,
}

impl Gates {
    /// Gates that each let `max_blocking` ops run and `max_queued` be admitted.
    pub fn new(max_blocking: usize, max_queued: usize) -> Self {
        Gates {
            gates: RwLock::default(),
            max_blocking,
            max_queued,
            batch_max: 1,
            observer: SharedObserver::default(),
        }
    }

    /// Reports every gate's admission waits, now and later, to `observer`;
    /// only the first call counts (false for a later one).
    pub fn observe_waits(&self, observer: WaitObserver) -> bool {
        self.observer.0.set(observer).is_ok()
    }

    /// Gates whose runners apply up to `batch_max` ops at once; each admits
    /// that many at least, or no batch could ever fill.
    pub fn with_batch_max(mut self, batch_max: usize) -> Self {
        self.batch_max = batch_max.max(1);
        self.max_blocking = self.max_blocking.max(self.batch_max);
        self
    }

    /// Ops admitted now over all gates (queued or running); one look per gate.
    pub fn admitted(&self) -> usize {
        self.gates.read().values().map(|g| g.admitted()).sum()
    }

    /// The gate of the account `id`.
    pub fn of(&self, id: &Arc<str>) -> Arc<Gate> {
        if let Some(gate) = self.gates.read().get(id) {
            return Arc::clone(gate);
        }
        let mut gates = self.gates.write();
        let gate = gates.entry(Arc::clone(id)).or_insert_with(|| {
            let gate = Gate::new(self.max_blocking, self.max_queued).with_batch_max(self.batch_max);
            Arc::new(gate.with_observer(self.observer.clone()))
        });
        Arc::clone(gate)
    }
}

/// Admission to one account's critical section, and its runner.
#[derive(Debug)]
pub struct Gate {
    permits: Arc<Semaphore>,
    admitted: Arc<AtomicUsize>,
    max_queued: usize,
    runner: Arc<Mutex<Runner>>,
    observer: SharedObserver,
}

/// What waits in the runner's queue.
enum Job {
    One(Task),
    Batched(Batched),
}

/// The runner's queue, whether a thread is draining it, and the largest batch.
#[derive(Default)]
struct Runner {
    jobs: VecDeque<Job>,
    running: bool,
    batch_max: usize,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("jobs", &self.jobs.len())
            .field("running", &self.running)
            .finish()
    }
}

/// Proof of admission: while it lives the op counts against the gate's limits.
#[derive(Debug)]
pub struct Admission {
    _permit: OwnedSemaphorePermit,
    _slot: Slot,
}

/// One of the `max_queued` places, given back on drop (also when cancelled).
#[derive(Debug)]
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    /// A gate that lets `max_blocking` ops run and `max_queued` be admitted at once.
    pub fn new(max_blocking: usize, max_queued: usize) -> Self {
        Gate {
            permits: Arc::new(Semaphore::new(max_blocking.max(1))),
            admitted: Arc::new(AtomicUsize::new(0)),
            max_queued: max_queued.max(1),
            runner: Arc::default(),
            observer: SharedObserver::default(),
        }
    }

    /// Reports admission waits to whatever `observer` holds (its [`Gates`]' one).
    fn with_observer(mut self, observer: SharedObserver) -> Self {
        self.observer = observer;
        self
    }

    /// Waits (FIFO, asynchronously) for a turn on the account, or refuses at
    /// once with `LimitReached` when `max_queued` ops are already admitted.
    pub async fn admit(&self) -> LedgerResult<Admission> {
        let before = self.admitted.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(Arc::clone(&self.admitted));
        if before >= self.max_queued {
            return Err(LedgerError::LimitReached(format!(
                "{before} operations are already queued on this account (max_queued_per_account)"
            )));
        }
        // Timed only when someone listens (a clock read per op otherwise saved).
        let arrived = self.observer.0.get().map(|o| (o, Instant::now()));
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| LedgerError::ShuttingDown)?;
        if let Some((observer, arrived)) = arrived {
            observer(arrived.elapsed());
        }
        Ok(Admission {
            _permit: permit,
            _slot: slot,
        })
    }

    /// Ops admitted now (queued at the gate or running).
    pub fn admitted(&self) -> usize {
        self.admitted.load(Ordering::Acquire)
    }

    /// Sets the largest batch the runner applies at once (`--batch-max`).
    pub fn with_batch_max(self, batch_max: usize) -> Self {
        self.runner.lock().batch_max = batch_max.max(1);
        self
    }

    fn enqueue(&self, job: Job) {
        let start = {
            let mut runner = self.runner.lock();
            runner.jobs.push_back(job);
            !std::mem::replace(&mut runner.running, true)
        };
        if start {
            let runner = Arc::clone(&self.runner);
            tokio::task::spawn_blocking(move || drain(&runner));
        }
    }

    /// Queues `task` on the account's runner and returns at once (nobody
    /// waits for it): how a parked withdrawal whose caller left is ended.
    /// Needs a tokio runtime (any thread of one).
    pub fn submit(&self, task: impl FnOnce() + Send + 'static) {
        backend::Runner::submit(self, Box::new(task));
    }

    /// Runs `op` on the account's runner, after the ops queued before it, and
    /// returns its result. For blocking ops that lock only this account
    /// (a withdrawal short of funds parks as a future, never here): anything
    /// else would hold up the ops behind it.
    pub async fn run<T, F>(&self, op: F) -> LedgerResult<T>
    where
        T: Send + 'static,
        F: FnOnce() -> LedgerResult<T> + Send + 'static,
    {
        run_on(self, op).await
    }
}

impl backend::Runner for Gate {
    fn submit(&self, task: Task) {
        self.enqueue(Job::One(task));
    }

    fn submit_batched(&self, job: Batched) {
        self.enqueue(Job::Batched(job));
    }
}

/// What the runner does next: one op, or a batch of neighbouring ones.
enum Work {
    One(Task),
    Batch(Vec<Batched>),
}

/// The runner's loop: runs queued jobs in order until none is left.
fn drain(runner: &Mutex<Runner>) {
    loop {
        let work = {
            let mut runner = runner.lock();
            match next(&mut runner) {
                Some(work) => work,
                None => {
                    runner.running = false;
                    return;
                }
            }
        };
        // A panicking op must not stop the runner: its sender is dropped,
        // so its caller hears INTERNAL, and the next job runs.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| match work {
            Work::One(task) => task(),
            Work::Batch(batch) => run_batch(batch),
        }));
    }
}

/// Takes the next job, and with a batchable one up to `batch_max` in all of
/// the batchable jobs right behind it (queue order is kept).
fn next(runner: &mut Runner) -> Option<Work> {
    let first = match runner.jobs.pop_front()? {
        Job::One(task) => return Some(Work::One(task)),
        Job::Batched(b) => b,
    };
    let mut batch = vec![first];
    while batch.len() < runner.batch_max.max(1) {
        match runner.jobs.pop_front() {
            Some(Job::Batched(b)) => batch.push(b),
            Some(other) => {
                runner.jobs.push_front(other);
                break;
            }
            None => break,
        }
    }
    Some(Work::Batch(batch))
}

fn run_batch(batch: Vec<Batched>) {
    let applier = Arc::clone(&batch[0].applier);
    let (mut ops, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|b| ((b.op, b.ctx), b.reply)).unzip();
    let answers = applier.apply(&mut ops);
    for (reply, answer) in replies.into_iter().zip(answers) {
        // The caller may be gone (client left); the op has run regardless.
        let _ = reply.send(answer);
    }
    // The contexts (and their admissions) go only once every answer is out.
    drop(ops);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_runner_runs_ops_in_order_and_survives_a_panic() {
        let gate = Arc::new(Gate::new(4, 100));
        let order = Arc::new(Mutex::new(Vec::new()));
        let runs = (0..20).map(|i| {
            let order = Arc::clone(&order);
            gate.run(move || {
                order.lock().push(i);
                Ok(i)
            })
        });
        // Queued in this order (each `run` queues when first polled).
        let results = futures::future::join_all(runs).await;
        assert_eq!(results, (0..20).map(Ok).collect::<Vec<_>>());
        assert_eq!(*order.lock(), (0..20).collect::<Vec<_>>());

        let panicked = gate
            .run(|| -> LedgerResult<()> { panic!("a bug in an op") })
            .await;
        assert!(matches!(panicked, Err(LedgerError::Internal(_))), "{panicked:?}");
        assert_eq!(gate.run(|| Ok(7)).await, Ok(7));
    }
}
