//! The one-trip lane: group commit across accounts on the PostgreSQL ledger.
//! At zero delay an op needs one call of a database function, and each
//! call was its own commit: one WAL flush (≈ 4 ms on this host's disk) and
//! a blocking thread per op waiting on it, handed the op by the account's
//! runner. Here an async call queues its op and awaits the answer; the
//! lane's thread ([`LANE_THREADS`]) takes the queued ops (up to
//! [`LANE_OPS_MAX`]) into one call: one commit for all of them, and no
//! thread per op.
//!
//! A call touches each account once (the database then decides its ops
//! set-wise) and no account a call in flight touches: two calls never wait
//! on each other's row locks, so one runs while the other commits (when
//! calls could share accounts, each waited through the other's commit:
//! 2.7k ops/s with two threads against 6.1k with one).
//!
//! An op is answered only after the call that carried it returned, so after
//! its commit. Ops queue in arrival order and a call keeps it, so an op
//! answered before another was sent never runs after it. The queues need
//! no bound of their own: every op in one holds an admission slot.
//! Plain sync threads, generic over the call (tests run it without a
//! database).

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

/// The most ops one call carries.
pub const LANE_OPS_MAX: usize = 256;

/// Lane threads (calls in flight) per server. One: a second call in
/// flight only halves the batches, because PostgreSQL flushes the WAL for
/// one commit after another (each waits through the other's flush; no
/// `commit_delay` by default). Measured at zero delay, 64 accounts: 7.3k
/// ops/s with one thread, 3.3k with two, 2.3k with three.
pub const LANE_THREADS: usize = 1;

/// The call a lane makes, on ops in rounds: one answer per op, round
/// after round, each in order.
pub type CallFn<Op, Answer> = dyn Fn(Vec<Vec<Op>>) -> Vec<Answer> + Send + Sync;

/// The call a lane makes, shared by its threads.
pub type Call<Op, Answer> = Arc<CallFn<Op, Answer>>;

/// The queue of ops and the threads that carry them; the threads end
/// when the lane is dropped.
pub struct Lane<Op, Answer> {
    shared: Arc<Shared<Op, Answer>>,
}

struct Shared<Op, Answer> {
    queue: Mutex<Queue<Op, Answer>>,
    /// Signalled when an op queues or a call ends.
    ready: Condvar,
}

struct Queue<Op, Answer> {
    ops: VecDeque<(Op, oneshot::Sender<Answer>)>,
    /// The accounts the calls in flight touch (their rows are locked
    /// until those calls commit).
    in_flight: HashSet<String>,
    closed: bool,
}

impl<Op, Answer> std::fmt::Debug for Lane<Op, Answer> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let queued = lock(&self.shared.queue).ops.len();
        f.debug_struct("Lane").field("queued", &queued).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere leaves the queue as it was: keep going with it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<Op: Touches + Send + 'static, Answer: Send + 'static> Lane<Op, Answer> {
    /// Starts `threads` lane threads making `call`.
    pub fn start(threads: usize, call: Call<Op, Answer>) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                ops: VecDeque::new(),
                in_flight: HashSet::new(),
                closed: false,
            }),
            ready: Condvar::new(),
        });
        for i in 0..threads.max(1) {
            let (carried, call) = (Arc::clone(&shared), Arc::clone(&call));
            std::thread::Builder::new()
                .name(format!("pg-lane-{i}"))
                .spawn(move || carry(&carried, &*call))?;
        }
        Ok(Lane { shared })
    }

    /// Queues `op`; its answer comes on the receiver (closed only if the
    /// lane ended first).
    pub fn submit(&self, op: Op) -> oneshot::Receiver<Answer> {
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.queue).ops.push_back((op, tx));
        self.shared.ready.notify_one();
        rx
    }
}

impl<Op, Answer> Drop for Lane<Op, Answer> {
    fn drop(&mut self) {
        lock(&self.shared.queue).closed = true;
        self.shared.ready.notify_all();
    }
}

/// What an op touches: the accounts it locks (its key first).
pub trait Touches {
    fn touches(&self) -> [Option<&str>; 2];
}

/// One lane thread: takes the ops it may, makes one call, answers each.
fn carry<Op: Touches, Answer>(shared: &Shared<Op, Answer>, call: &CallFn<Op, Answer>) {
    loop {
        let (rounds, accounts) = {
            let mut queue = lock(&shared.queue);
            loop {
                let Queue {
                    ops,
                    in_flight,
                    closed,
                } = &mut *queue;
                if ops.is_empty() && *closed {
                    return; // closed, and nothing left to carry
                }
                let rounds = take(ops, in_flight);
                if !rounds.is_empty() {
                    let accounts = touched(&rounds);
                    in_flight.extend(accounts.iter().cloned());
                    break (rounds, accounts);
                }
                queue = shared.ready.wait(queue).unwrap_or_else(PoisonError::into_inner);
            }
        };
        let mut replies = Vec::new();
        let rounds: Vec<Vec<Op>> = rounds
            .into_iter()
            .map(|round| {
                let (ops, answers_to): (Vec<Op>, Vec<_>) = round.into_iter().unzip();
                replies.extend(answers_to);
                ops
            })
            .collect();
        // A panicking call answers nobody: each receiver sees its sender
        // dropped (an internal error), and the thread carries on.
        let answers = panic::catch_unwind(AssertUnwindSafe(|| call(rounds))).unwrap_or_default();
        for (reply, answer) in replies.into_iter().zip(answers) {
            // The caller may be gone (client left); the op ran regardless.
            let _ = reply.send(answer);
        }
        let mut queue = lock(&shared.queue);
        for account in &accounts {
            queue.in_flight.remove(account);
        }
        drop(queue);
        shared.ready.notify_all();
    }
}

fn touched<Op: Touches, Answer>(rounds: &[Vec<(Op, Answer)>]) -> Vec<String> {
    rounds
        .iter()
        .flatten()
        .flat_map(|(op, _)| op.touches())
        .flatten()
        .map(str::to_owned)
        .collect()
}

/// The ops of the next call, in rounds: at most [`LANE_OPS_MAX`] in all,
/// oldest first; no account touched twice in a round (the database decides
/// a round set-wise, in one statement) and an account's ops in rounds in
/// their order (each in a later round than the one before it). None touches
/// an account a call in flight touches (two calls never wait on each
/// other's row locks), nor passes an older op left queued that touches one
/// of its accounts. Ops of different accounts may pass each other: both
/// were in flight, neither answered.
fn take<Op: Touches, Answer>(
    ops: &mut VecDeque<(Op, Answer)>,
    in_flight: &HashSet<String>,
) -> Vec<Vec<(Op, Answer)>> {
    let mut round_of: Vec<Option<usize>> = vec![None; ops.len()];
    {
        // Each account's last round so far in this call.
        let mut last: HashMap<&str, usize> = HashMap::new();
        let mut blocked: HashSet<&str> = in_flight.iter().map(String::as_str).collect();
        let mut count = 0;
        for ((op, _), round) in ops.iter().zip(round_of.iter_mut()) {
            let touched = op.touches();
            let mut accounts = touched.iter().flatten().copied();
            if count == LANE_OPS_MAX || accounts.clone().any(|a| blocked.contains(a)) {
                blocked.extend(&mut accounts);
                continue;
            }
            let next = accounts
                .clone()
                .filter_map(|a| last.get(a))
                .max()
                .map_or(0, |r| r + 1);
            last.extend(accounts.map(|a| (a, next)));
            *round = Some(next);
            count += 1;
        }
    }
    let rounds_n = round_of.iter().flatten().max().map_or(0, |r| r + 1);
    let mut rounds: Vec<Vec<(Op, Answer)>> = (0..rounds_n).map(|_| Vec::new()).collect();
    let mut kept = VecDeque::with_capacity(ops.len());
    for (item, round) in ops.drain(..).zip(round_of) {
        match round {
            Some(r) => rounds[r].push(item),
            None => kept.push_back(item),
        }
    }
    *ops = kept;
    rounds
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A test op: the accounts it touches, and a number.
    #[derive(Debug, Clone, PartialEq)]
    struct Op(&'static str, Option<&'static str>, usize);

    impl Touches for Op {
        fn touches(&self) -> [Option<&str>; 2] {
            [Some(self.0), self.1]
        }
    }

    const NAMES: [&str; 8] = ["a", "b", "c", "d", "e", "f", "g", "h"];

    fn blocking_recv<T>(rx: oneshot::Receiver<T>) -> Option<T> {
        rx.blocking_recv().ok()
    }

    fn queue(ops: &[Op]) -> VecDeque<(Op, ())> {
        ops.iter().map(|op| (op.clone(), ())).collect()
    }

    fn numbers(rounds: &[Vec<(Op, ())>]) -> Vec<Vec<usize>> {
        rounds
            .iter()
            .map(|r| r.iter().map(|(op, _)| op.2).collect())
            .collect()
    }

    /// A round touches an account once; an account's ops go in later and
    /// later rounds, a transfer's second account included.
    #[test]
    fn rounds_touch_each_account_once_and_keep_each_accounts_order() {
        let mut q = queue(&[
            Op("a", None, 0),
            Op("b", None, 1),
            Op("a", None, 2),      // a again: the next round
            Op("c", Some("a"), 3), // after op 2 on a
            Op("c", None, 4),      // after op 3 on c
            Op("d", None, 5),
        ]);
        let rounds = take(&mut q, &HashSet::new());
        assert_eq!(numbers(&rounds), vec![vec![0, 1, 5], vec![2], vec![3], vec![4]]);
        assert!(q.is_empty());
    }

    /// An account a call in flight touches is not taken until that call
    /// ends, nor any later op that touches an account of one left behind.
    #[test]
    fn an_account_in_flight_waits_for_its_call() {
        let mut q = queue(&[
            Op("a", None, 0),
            Op("b", Some("a"), 1),
            Op("b", None, 2),
            Op("d", None, 3),
        ]);
        let in_flight: HashSet<String> = ["a"].map(String::from).into();
        assert_eq!(numbers(&take(&mut q, &in_flight)), vec![vec![3]]);
        assert_eq!(
            numbers(&take(&mut q, &HashSet::new())),
            vec![vec![0], vec![1], vec![2]]
        );
    }

    #[test]
    fn a_call_carries_at_most_the_bound() {
        let names: Vec<&'static str> = (0..LANE_OPS_MAX + 5)
            .map(|i| &*Box::leak(format!("n{i}").into_boxed_str()))
            .collect();
        let ops: Vec<Op> = names.iter().enumerate().map(|(i, n)| Op(n, None, i)).collect();
        let mut q = queue(&ops);
        assert_eq!(take(&mut q, &HashSet::new())[0].len(), LANE_OPS_MAX);
        let rest = numbers(&take(&mut q, &HashSet::new()));
        assert_eq!(rest, vec![(LANE_OPS_MAX..LANE_OPS_MAX + 5).collect::<Vec<_>>()]);
    }

    /// Ops queued while the one lane thread is busy ride its next call
    /// together, each with its own answer.
    #[test]
    fn ops_queued_behind_a_call_share_the_next_one() {
        let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
        let gate = Mutex::new(gate_rx);
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&sizes);
        let call: Call<Op, usize> = Arc::new(move |rounds: Vec<Vec<Op>>| {
            let ops: Vec<Op> = rounds.into_iter().flatten().collect();
            let first = lock(&seen).is_empty();
            lock(&seen).push(ops.len());
            if first {
                // Held until every other op has queued behind it.
                let _ = lock(&gate).recv();
            }
            ops.iter().map(|o| o.2 + 1000).collect()
        });
        let lane = Lane::start(1, call).unwrap();
        let first = lane.submit(Op("a", None, 0));
        while lock(&sizes).is_empty() {
            std::thread::yield_now();
        }
        let rest: Vec<_> = (1..NAMES.len())
            .map(|i| lane.submit(Op(NAMES[i], None, i)))
            .collect();
        gate_tx.send(()).unwrap();
        assert_eq!(blocking_recv(first), Some(1000));
        for (i, rx) in rest.into_iter().enumerate() {
            assert_eq!(blocking_recv(rx), Some(i + 1 + 1000));
        }
        assert_eq!(*lock(&sizes), vec![1, NAMES.len() - 1]);
    }

    /// Two threads: while one call is held, the other thread carries the
    /// ops on other accounts, and an op on a held account waits for it.
    #[test]
    fn a_second_call_runs_beside_a_held_one_on_other_accounts() {
        let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
        let gate = Mutex::new(gate_rx);
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&calls);
        let call: Call<Op, usize> = Arc::new(move |rounds: Vec<Vec<Op>>| {
            let ops: Vec<Op> = rounds.into_iter().flatten().collect();
            lock(&seen).push(ops.iter().map(|o| o.2).collect::<Vec<_>>());
            if ops[0].2 == 0 {
                let _ = lock(&gate).recv(); // the first call is held
            }
            ops.iter().map(|o| o.2).collect()
        });
        let lane = Lane::start(2, call).unwrap();
        let held = lane.submit(Op("a", None, 0));
        while lock(&calls).is_empty() {
            std::thread::yield_now();
        }
        let same = lane.submit(Op("a", None, 1));
        let other = lane.submit(Op("b", None, 2));
        assert_eq!(
            blocking_recv(other),
            Some(2),
            "answered while the first call is held"
        );
        gate_tx.send(()).unwrap();
        assert_eq!(blocking_recv(held), Some(0));
        assert_eq!(blocking_recv(same), Some(1));
        assert_eq!(*lock(&calls), vec![vec![0], vec![2], vec![1]]);
    }

    #[test]
    fn a_panicking_call_closes_its_answers_and_the_lane_goes_on() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let call: Call<Op, usize> = Arc::new(move |rounds: Vec<Vec<Op>>| {
            let ops: Vec<Op> = rounds.into_iter().flatten().collect();
            if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("planted");
            }
            ops.iter().map(|o| o.2).collect()
        });
        let lane = Lane::start(1, call).unwrap();
        assert_eq!(blocking_recv(lane.submit(Op("a", None, 1))), None);
        assert_eq!(blocking_recv(lane.submit(Op("a", None, 2))), Some(2));
    }

    #[test]
    fn dropping_the_lane_ends_its_threads() {
        let call: Call<Op, usize> =
            Arc::new(|rounds: Vec<Vec<Op>>| rounds.iter().flatten().map(|o| o.2).collect());
        let lane = Lane::start(2, call).unwrap();
        let shared = Arc::downgrade(&lane.shared);
        drop(lane);
        while shared.strong_count() > 0 {
            std::thread::yield_now();
        }
    }
}
