//! Real time within one process of a merged history, for the order of all
//! ops (`global`). The merge widened every interval by the clock skew, which
//! only pairs of ops from different processes need: two ops of one process
//! share one clock. So each op node of a merged history has a second
//! real-time gate, opened like the first (one pointer into the process's ops
//! sorted by reply, one into them sorted by send) but with the widening
//! taken back off. One process: no second gate. Reads keep the first only.

use crate::history::History;

/// The second gate of every op node, per process.
#[derive(Debug)]
pub(crate) struct OwnGates {
    /// How much later than a send a widened reply of the same process may
    /// come and still precede it (`Processes::same_process_slack_ns`).
    slack_ns: u64,
    /// Each process's op nodes sorted by reply time, and by send time.
    by_recv: Vec<Vec<u32>>,
    by_send: Vec<Vec<u32>>,
    /// Per process: the first node in `by_recv` not yet done, and how many
    /// of `by_send` have been released.
    done_recv: Vec<usize>,
    released: Vec<usize>,
}

impl OwnGates {
    /// The gates of `h`'s op nodes (below `n_ops`), from the nodes sorted by
    /// reply and by send; `None` for a history of one process.
    pub(crate) fn build(h: &History, by_recv: &[u32], by_send: &[u32], n_ops: u32) -> Option<OwnGates> {
        let count = h.processes.count();
        if count < 2 {
            return None;
        }
        let split = |sorted: &[u32]| {
            let mut per: Vec<Vec<u32>> = vec![Vec::new(); count];
            for &n in sorted.iter().filter(|&&n| n < n_ops) {
                per[h.processes.of_op(n)].push(n);
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

    /// The op nodes that have this gate (every one, each once).
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
    /// (a send clamped at the line's start must not make a node wait for
    /// itself; dropping such an order is weaker, never wrong).
    fn gate(&self, n: u32, (recv, send): (&impl Fn(u32) -> u64, &impl Fn(u32) -> u64)) -> u64 {
        send(n).saturating_add(self.slack_ns).min(recv(n))
    }
}
