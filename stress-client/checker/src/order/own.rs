//! Real time within one process of a merged history, for the one order of
//! ops and reads (`global`). The merge widened every interval by the clock
//! skew, which only pairs from different processes need: two ops or reads of
//! one process share one clock. So in a merged history each node with a
//! process (every op, a read tied to its process) has a second real-time
//! gate, opened like the first (one pointer into the process's such nodes
//! sorted by reply, one into them sorted by send) but with the widening
//! taken back off.
//!
//! An op of unknown outcome is a node only where the search placed it, and
//! then it waits for its process's nodes answered before its send like any
//! other (it has no reply, so nothing waits for it). The search knows this
//! bound on the op's own account (`placement::cands`, its floor per
//! process); across accounts a clash sends the search back, as the widened
//! order does.

use crate::history::History;

/// The second gate of every node that has one, per process.
#[derive(Debug)]
pub(crate) struct OwnGates {
    /// How much later than a send a widened reply of the same process may
    /// come and still precede it (`Processes::same_process_slack_ns`).
    slack_ns: u64,
    /// Each process's gated nodes sorted by reply time, and by send time.
    by_recv: Vec<Vec<u32>>,
    by_send: Vec<Vec<u32>>,
    /// Per process: the first node in `by_recv` not yet done, and how many
    /// of `by_send` have been released.
    done_recv: Vec<usize>,
    released: Vec<usize>,
}

/// True when `h` is merged from several processes whose intervals were
/// widened: only then is there a widening to take back off.
pub(crate) fn applies(h: &History) -> bool {
    h.processes.count() > 1 && h.processes.widened_ns > 0
}

/// True when `h` is merged and its reads are tied to their processes.
pub(crate) fn reads_apply(h: &History) -> bool {
    applies(h) && h.processes.of_read(0).is_some()
}

/// The process of node `n` (ops below `n_ops`, then reads) when it has a
/// second gate: an op, or a read tied to its process.
pub(crate) fn process_of(h: &History, n_ops: u32, n: u32) -> Option<usize> {
    match n.checked_sub(n_ops) {
        None => Some(h.processes.of_op(n)),
        Some(r) => h.processes.of_read(r),
    }
}

impl OwnGates {
    /// The gates of `h`'s nodes, from all nodes sorted by reply and by send
    /// (reads numbered from `n_ops`); `None` when `h` is not merged.
    pub(crate) fn build(h: &History, by_recv: &[u32], by_send: &[u32], n_ops: u32) -> Option<OwnGates> {
        if !applies(h) {
            return None;
        }
        let count = h.processes.count();
        let split = |sorted: &[u32]| {
            let mut per: Vec<Vec<u32>> = vec![Vec::new(); count];
            for &n in sorted {
                if let Some(list) = process_of(h, n_ops, n).and_then(|p| per.get_mut(p)) {
                    list.push(n);
                }
            }
            per
        };
        Some(OwnGates {
            slack_ns: h.processes.same_process_slack_ns(),
            by_recv: split(by_recv),
            by_send: split(by_send),
            done_recv: vec![0; count],
            released: vec![0; count],
        })
    }

    /// How many processes there are.
    pub(crate) fn count(&self) -> usize {
        self.by_recv.len()
    }

    /// The nodes that have this gate (every one, each once).
    pub(crate) fn nodes(&self) -> impl Iterator<Item = u32> + '_ {
        self.by_recv.iter().flatten().copied()
    }

    /// Moves process `p`'s pointer past its nodes that are `done`, then
    /// pushes into `opened` every node of `p` whose gate opens: sent no
    /// later (widening taken off) than the reply of `p`'s first node not
    /// yet done.
    pub(crate) fn release(
        &mut self,
        p: usize,
        (recv, send): (impl Fn(u32) -> u64, impl Fn(u32) -> u64),
        done: impl Fn(u32) -> bool,
        opened: &mut Vec<u32>,
    ) {
        let (Some(by_recv), Some(by_send)) = (self.by_recv.get(p), self.by_send.get(p)) else {
            return;
        };
        let mut first = self.done_recv[p];
        while by_recv.get(first).is_some_and(|&n| done(n)) {
            first += 1;
        }
        self.done_recv[p] = first;
        let bound = by_recv.get(first).map_or(u64::MAX, |&n| recv(n));
        let mut next = self.released[p];
        while let Some(&b) = by_send.get(next) {
            if first < by_recv.len() && self.gate(b, (&recv, &send)) > bound {
                break;
            }
            opened.push(b);
            next += 1;
        }
        self.released[p] = next;
    }

    /// The first node of process `p` not yet done, if its reply precedes
    /// node `n` (of `p`) on the process's clock: what holds `n` when stuck.
    pub(crate) fn blocker(
        &self,
        p: usize,
        n: u32,
        (recv, send): (impl Fn(u32) -> u64, impl Fn(u32) -> u64),
    ) -> Option<u32> {
        let first = *self.by_recv.get(p)?.get(self.done_recv[p])?;
        (first != n && recv(first) < self.gate(n, (&recv, &send))).then_some(first)
    }

    /// The nodes of its process answered before this time precede node `n`:
    /// its send with the widening taken off, but never past its own reply
    /// (a malformed interval must not make a node wait for itself).
    fn gate(&self, n: u32, (recv, send): (&impl Fn(u32) -> u64, &impl Fn(u32) -> u64)) -> u64 {
        send(n).saturating_add(self.slack_ns).min(recv(n))
    }
}
