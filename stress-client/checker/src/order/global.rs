//! One order for everything: the ops (a transfer is one node with two legs)
//! and each account's sequence order plus real-time order (A answered before
//! B was sent) must form an acyclic graph, or no single order of all ops
//! exists and the history is neither linearizable nor serializable.
//! Per-account checks cannot see this: two opposite transfers applied in two
//! critical sections each replay fine on both accounts.
//!
//! Reads are nodes too (see `readnodes`): a GetBalance that saw sequence `s`
//! of account A sits right after A's op `s` and before the next, and real
//! time orders it against every op *and every other read*. A reader that
//! sees a transfer's credit and then, in a later call, the source without
//! its debit closes a cycle through the transfer (read skew). A cycle on one
//! account alone is left to the per-account checks (`real_time_order`,
//! `stale_read`), which name it more precisely.
//!
//! Kahn's algorithm without building the graph: a node is ready when its
//! predecessor on each of its accounts is done and every op answered before
//! it was sent is done. The latter is one pointer into the ops sorted by
//! reply time (the first op not yet done) and one into the ops sorted by send
//! time (released while they were sent no later than that op's reply), so
//! the whole check is two sorts and a linear sweep: O(n log n).
//!
//! In a merged history two nodes of one process are ordered on their own
//! clock, exactly (`own`), and all others by the widened times; the ops of
//! unknown outcome too, where the search placed them.

use crate::history::leg::decode;
use crate::history::leg::{key_entry, key_seq};
use crate::history::{History, Read};
use crate::order::index::{entry_op, Index};
use crate::order::own::{self, OwnGates};
use crate::order::readnodes::ReadNodes;
use crate::report::describe;
use crate::report::{Sink, ViolationKind};

/// `pending` marks: not a node, and done.
const NOT_NODE: u8 = u8::MAX;
const DONE: u8 = u8::MAX - 1;
/// A position that names no view.
const NO_POS: u32 = u32::MAX;
/// Edges of a cycle spelled out in a violation.
const CYCLE_EDGES_SHOWN: usize = 6;

/// The sweep's state.
struct Graph<'a> {
    h: &'a History,
    index: &'a Index,
    /// Node ids below this are ops; `n_ops + r` is read `r`.
    n_ops: u32,
    reads: ReadNodes,
    pending: Vec<u8>,
    /// Each op's position in its account's keys, and each transfer leg's
    /// in its target's (`NO_POS`: not in the index).
    pos: Vec<u32>,
    to_pos: Vec<u32>,
    by_recv: Vec<u32>,
    by_send: Vec<u32>,
    done_recv: usize,
    released: usize,
    ready: Vec<u32>,
    /// Merged histories: real time within each process, exact (see `own`).
    own: Option<OwnGates>,
    /// Nodes whose own gate just opened (reused).
    opened: Vec<u32>,
}

/// An edge of the graph: `from` comes before `to`.
#[derive(Debug, Clone, Copy)]
enum Edge {
    /// On this account, at these sequence numbers.
    Account {
        account: usize,
        from_seq: u64,
        to_seq: u64,
    },
    /// `from` was answered before `to` was sent.
    RealTime,
    /// As `RealTime`, both of one process, on its clock (widening taken off).
    OwnRealTime,
}

/// What the order check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Order {
    /// Every op fits one order.
    Acyclic,
    /// A cycle was reported (or left the verdict open).
    Cycle,
    /// A cycle runs through ops of unknown outcome placed at these spots
    /// (op, account, sequence), the likeliest culprit (the one sent last,
    /// which the search puts too early) first. One of them must go
    /// elsewhere; `sure` when there is only one (then it cannot stand there
    /// whatever else is placed, and leaving it out loses no placement).
    Misplaced { spots: Vec<(u32, u32, u64)>, sure: bool },
}

/// Checks that the ops and reads fit one order; reports a cycle if they do
/// not. `first` is the index without placements, `placed` the one with the
/// search's placements (if it placed any).
/// `known` keeps the nodes of known outcome sorted from one check to the
/// next (the search's tries differ only in where they place the others).
pub(crate) fn check(
    h: &History,
    first: &Index,
    placed: Option<&Index>,
    known: &mut Known,
    sink: &mut Sink,
) -> Order {
    Graph::new(h, placed.unwrap_or(first), known).sweep(sink)
}

/// A sweep's nodes sorted by reply time and by send time.
struct Sorted {
    by_recv: Vec<u32>,
    by_send: Vec<u32>,
}

/// The nodes of known outcome of the last sweep, sorted (see [`check`]).
#[derive(Default)]
pub(crate) struct Known(Option<Sorted>);

/// Counts what each view of account `a` waits for (its real-time gate, and
/// the view or reads before it) and notes where each view sits.
fn count_views(
    h: &History,
    index: &Index,
    reads: &ReadNodes,
    a: usize,
    pending: &mut [u8],
    (pos, to_pos): (&mut [u32], &mut [u32]),
) {
    // Reads that saw none of the account's views come before the first.
    let first_waits = !reads.group_at(a, 0).is_empty();
    for (p, &k) in index.keys(a).iter().enumerate() {
        let e = key_entry(k) as usize;
        let slot = pos.get_mut(e).or_else(|| to_pos.get_mut(e - h.ops.len()));
        if let Some(slot) = slot {
            *slot = p as u32;
        }
        let Some(op) = entry_op(h, key_entry(k)) else {
            continue;
        };
        let slot = &mut pending[op as usize];
        if *slot == NOT_NODE {
            *slot = 1;
        }
        *slot += u8::from(p > 0 || first_waits);
    }
}

/// The nodes (`pending` not `NOT_NODE`) sorted by reply and by send: the
/// known ones from `known` when it holds exactly them, the ops of unknown
/// outcome (few) sorted here and merged in; `known` keeps the known ones.
fn sort_nodes(h: &History, pending: &[u8], known: &mut Known) -> Sorted {
    let is_node = |n: &u32| pending.get(*n as usize).is_some_and(|&p| p != NOT_NODE);
    let count = (0..pending.len() as u32)
        .filter(|n| is_node(n) && !is_open(h, *n))
        .count();
    let fits = |v: &[u32]| v.len() == count && v.iter().all(is_node);
    let kept = known.0.take().filter(|k| fits(&k.by_recv) && fits(&k.by_send));
    let Sorted { by_recv, by_send } = kept.unwrap_or_else(|| {
        let mut by_recv: Vec<u32> = (0..pending.len() as u32)
            .filter(|n| is_node(n) && !is_open(h, *n))
            .collect();
        let mut by_send = by_recv.clone();
        by_recv.sort_unstable_by_key(|&i| recv(h, i));
        by_send.sort_unstable_by_key(|&i| send(h, i));
        Sorted { by_recv, by_send }
    });
    let mut open: Vec<u32> = (0..h.ops.len() as u32)
        .filter(|n| is_node(n) && is_open(h, *n))
        .collect();
    open.sort_unstable_by_key(|&i| send(h, i));
    // Without a reply an open op sorts last by reply time.
    let all_recv = by_recv.iter().chain(&open).copied().collect();
    let all_send = merge_by(&by_send, &open, |i| send(h, i));
    known.0 = Some(Sorted { by_recv, by_send });
    Sorted {
        by_recv: all_recv,
        by_send: all_send,
    }
}

/// Two lists sorted by `key` merged into one.
fn merge_by(a: &[u32], b: &[u32], key: impl Fn(u32) -> u64) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if key(b[j]) < key(a[i]) {
            out.push(b[j]);
            j += 1;
        } else {
            out.push(a[i]);
            i += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// The spots of the ops of unknown outcome a cycle runs through, each op's
/// place on the account the cycle leaves it by, latest sent first.
fn misplaced(h: &History, cycle: &[(u32, Edge)]) -> Option<Order> {
    let k = cycle.len();
    let mut open: Vec<usize> = (0..k).filter(|&i| is_open(h, cycle[i].0)).collect();
    open.sort_by_key(|&i| std::cmp::Reverse(send(h, cycle[i].0)));
    let mut spots = Vec::new();
    for &i in &open {
        if let Edge::Account {
            account, from_seq, ..
        } = cycle[(i + 1) % k].1
        {
            spots.push((cycle[i].0, account as u32, from_seq));
        }
        if let Edge::Account { account, to_seq, .. } = cycle[i].1 {
            if !spots.contains(&(cycle[i].0, account as u32, to_seq)) {
                spots.push((cycle[i].0, account as u32, to_seq));
            }
        }
    }
    let one_account = spots.len() == 1;
    let sure = open.len() == 1 && one_account;
    (!spots.is_empty()).then_some(Order::Misplaced { spots, sure })
}

impl<'a> Graph<'a> {
    fn new(h: &'a History, index: &'a Index, known: &mut Known) -> Graph<'a> {
        // Past 2^32 nodes the reads are left out (the index refuses such ops).
        let with_reads = h.ops.len().saturating_add(h.reads.len()) < u32::MAX as usize;
        let reads = match with_reads {
            true => ReadNodes::build(h, index),
            false => ReadNodes::default(),
        };
        let n_ops = h.ops.len();
        let mut pending = vec![NOT_NODE; n_ops + if with_reads { h.reads.len() } else { 0 }];
        let mut pos = vec![NO_POS; n_ops];
        let mut to_pos = vec![NO_POS; h.transfers.len()];
        for a in 0..h.accounts.len() {
            count_views(h, index, &reads, a, &mut pending, (&mut pos, &mut to_pos));
        }
        for &r in reads.nodes() {
            pending[n_ops + r as usize] = 1 + u8::from(reads.slot(r) > 0);
        }
        let Sorted { by_recv, by_send } = sort_nodes(h, &pending, known);
        let own = OwnGates::build(h, &by_recv, &by_send, n_ops as u32);
        for n in own.iter().flat_map(OwnGates::nodes) {
            pending[n as usize] += 1;
        }
        Graph {
            h,
            index,
            n_ops: n_ops as u32,
            reads,
            pos,
            to_pos,
            pending,
            by_recv,
            by_send,
            done_recv: 0,
            released: 0,
            ready: Vec::new(),
            own,
            opened: Vec::new(),
        }
    }

    /// Kahn's sweep; on a cycle, reports it or names the placed ops in it.
    fn sweep(&mut self, sink: &mut Sink) -> Order {
        let nodes = self.by_recv.len();
        let mut done = 0;
        self.release();
        for p in 0..self.own.as_ref().map_or(0, OwnGates::count) {
            self.release_own(p);
        }
        while let Some(n) = self.ready.pop() {
            self.pending[n as usize] = DONE;
            done += 1;
            self.finish(n);
        }
        if done == nodes {
            return Order::Acyclic;
        }
        let Some(cycle) = self.find_cycle() else {
            return Order::Cycle;
        };
        if let Some(spot) = misplaced(self.h, &cycle) {
            return spot;
        }
        self.report(&cycle, sink);
        Order::Cycle
    }

    /// One node fewer to wait for; ready at zero.
    fn satisfy(&mut self, op: u32) {
        let slot = &mut self.pending[op as usize];
        if *slot != NOT_NODE && *slot != DONE && *slot > 0 {
            *slot -= 1;
            if *slot == 0 {
                self.ready.push(op);
            }
        }
    }

    /// Opens the real-time gate of every node sent no later than the reply
    /// of the first op not yet done.
    fn release(&mut self) {
        let bound = self
            .by_recv
            .get(self.done_recv)
            .map_or(u64::MAX, |&i| recv(self.h, i));
        while let Some(&b) = self.by_send.get(self.released) {
            if self.done_recv < self.by_recv.len() && send(self.h, b) > bound {
                break;
            }
            self.released += 1;
            self.satisfy(b);
        }
    }

    /// Opens the own-process gate of every node of process `p` sent no later
    /// than the reply of its first node not yet done (widening taken off).
    fn release_own(&mut self, p: usize) {
        let Some(own) = self.own.as_mut() else {
            return;
        };
        let (h, pending) = (self.h, &self.pending);
        let times = (|n| recv(h, n), |n| send(h, n));
        own.release(p, times, |n| pending[n as usize] == DONE, &mut self.opened);
        let mut opened = std::mem::take(&mut self.opened);
        for n in opened.drain(..) {
            self.satisfy(n);
        }
        self.opened = opened;
    }

    /// Node `n` is done: its successors on each account lose a predecessor,
    /// and the real-time gates move on.
    fn finish(&mut self, n: u32) {
        if n < self.n_ops {
            let mut views = [None; 2];
            for (slot, view) in views.iter_mut().zip(self.positions(n)) {
                *slot = Some(view);
            }
            for (a, pos) in views.into_iter().flatten() {
                self.after_view(a, pos + 1);
            }
        } else {
            let r = n - self.n_ops;
            if self.reads.done(r) {
                let a = self.h.reads[r as usize].account as usize;
                self.satisfy_view(a, self.reads.slot(r));
            }
        }
        while self
            .by_recv
            .get(self.done_recv)
            .is_some_and(|&i| self.pending[i as usize] == DONE)
        {
            self.done_recv += 1;
        }
        self.release();
        if self.own.is_some() {
            if let Some(p) = own::process_of(self.h, self.n_ops, n) {
                self.release_own(p);
            }
        }
    }

    /// The view before `slot` on account `a` is done: the reads that sit
    /// right after it lose their predecessor, or, without such reads, the
    /// view at `slot` does.
    fn after_view(&mut self, a: usize, slot: usize) {
        let group = self.reads.next_group(a, slot);
        if group.is_empty() {
            return self.satisfy_view(a, slot);
        }
        for p in group {
            let r = self.reads.read_at(p);
            self.satisfy(self.n_ops + r);
        }
    }

    /// The view at `slot` on account `a` loses its account predecessor.
    fn satisfy_view(&mut self, a: usize, slot: usize) {
        if let Some(&k) = self.index.keys(a).get(slot) {
            if let Some(op) = entry_op(self.h, key_entry(k)) {
                self.satisfy(op);
            }
        }
    }

    /// Where op `n`'s views sit: (account, position in its keys).
    fn positions(&self, n: u32) -> impl Iterator<Item = (usize, usize)> {
        let h = self.h;
        let op = &h.ops[n as usize];
        let source = self
            .pos
            .get(n as usize)
            .copied()
            .filter(|&p| p != NO_POS)
            .map(|p| (op.account as usize, p as usize));
        let target = find_leg_index(h, n).and_then(|t| {
            let p = *self.to_pos.get(t).filter(|&&p| p != NO_POS)?;
            Some((h.transfers[t].to_account as usize, p as usize))
        });
        source.into_iter().chain(target)
    }

    /// Walks back from a stuck node through stuck predecessors until one
    /// repeats: the loop is a cycle, returned in forward order with the
    /// edge into each node.
    fn find_cycle(&self) -> Option<Vec<(u32, Edge)>> {
        let start = self
            .by_recv
            .iter()
            .copied()
            .find(|&i| self.pending[i as usize] != DONE)?;
        let mut path: Vec<(u32, Edge)> = Vec::new();
        let mut seen = std::collections::HashMap::new();
        let mut node = start;
        loop {
            if let Some(&at) = seen.get(&node) {
                let mut cycle: Vec<(u32, Edge)> = path.split_off(at);
                cycle.reverse();
                return Some(cycle);
            }
            seen.insert(node, path.len());
            let (pred, edge) = self.stuck_pred(node)?;
            path.push((node, edge));
            node = pred;
        }
    }

    /// A predecessor of the stuck node `n` that is not done, and the edge.
    fn stuck_pred(&self, n: u32) -> Option<(u32, Edge)> {
        let on_account = match n < self.n_ops {
            true => self.stuck_op_pred(n),
            false => self.stuck_read_pred(n - self.n_ops),
        };
        if on_account.is_some() {
            return on_account;
        }
        let h = self.h;
        let first = self.by_recv.get(self.done_recv).copied();
        if let Some(first) = first.filter(|&f| recv(h, f) < send(h, n)) {
            return Some((first, Edge::RealTime));
        }
        let own = self.own.as_ref()?;
        let p = own::process_of(h, self.n_ops, n)?;
        let first = own.blocker(p, n, (|i| recv(h, i), |i| send(h, i)))?;
        Some((first, Edge::OwnRealTime))
    }

    /// A stuck op's predecessor on one of its accounts: a read right before
    /// it, or the view before it.
    fn stuck_op_pred(&self, n: u32) -> Option<(u32, Edge)> {
        for (a, pos) in self.positions(n) {
            let here = key_seq(self.index.keys(a)[pos]);
            let group = self.reads.group_at(a, pos);
            if self.reads.left_in(&group) > 0 {
                for p in group {
                    let r = self.reads.read_at(p);
                    if self.pending[(self.n_ops + r) as usize] != DONE {
                        let from_seq = self.h.reads[r as usize].sequence;
                        return Some((self.n_ops + r, account_edge(a, from_seq, here)));
                    }
                }
            }
            let Some(&k) = pos.checked_sub(1).and_then(|p| self.index.keys(a).get(p)) else {
                continue;
            };
            let Some(op) = entry_op(self.h, key_entry(k)) else {
                continue;
            };
            if self.pending[op as usize] != DONE {
                return Some((op, account_edge(a, key_seq(k), here)));
            }
        }
        None
    }

    /// A stuck read's predecessor on its account: the view it saw last.
    fn stuck_read_pred(&self, r: u32) -> Option<(u32, Edge)> {
        let read = &self.h.reads[r as usize];
        let a = read.account as usize;
        let k = *self
            .reads
            .slot(r)
            .checked_sub(1)
            .and_then(|p| self.index.keys(a).get(p))?;
        let op = entry_op(self.h, key_entry(k))?;
        (self.pending[op as usize] != DONE).then(|| (op, account_edge(a, key_seq(k), read.sequence)))
    }

    /// Reports the cycle, or leaves the verdict open when it runs through an
    /// op of unknown outcome (where it was placed was one choice of several).
    fn report(&self, cycle: &[(u32, Edge)], sink: &mut Sink) {
        let h = self.h;
        let accounts: std::collections::BTreeSet<usize> = cycle
            .iter()
            .filter_map(|(_, e)| match e {
                Edge::Account { account, .. } => Some(*account),
                Edge::RealTime | Edge::OwnRealTime => None,
            })
            .collect();
        if accounts.len() < 2 {
            // On one account this is a real-time order violation, which the
            // replay of that account reports in its own words.
            return;
        }
        let text = describe_cycle(h, cycle);
        if cycle.iter().any(|(n, _)| is_open(h, *n)) {
            sink.undecided(format!("the placement chosen for the ops of unknown outcome leaves a cycle in the order of all ops: {text}"));
            return;
        }
        let id = accounts
            .iter()
            .map(|&a| describe::account(h, a))
            .collect::<Vec<_>>()
            .join(", ");
        let reads = cycle.iter().filter(|(n, _)| read_of(h, *n).is_some()).count();
        sink.report(ViolationKind::OrderCycle, &id, || match reads {
            0 => format!("{text}: no single order of all operations exists (order cycle)"),
            _ => format!("{text}: no single order of all operations and reads exists; the {reads} read(s) saw the operations in orders that contradict each other (order cycle, read skew)"),
        });
    }
}

/// A node's reply time for real-time order: never before it was sent, and
/// `u64::MAX` for an op without a reply (which then precedes nothing).
/// A read's reply time likewise never comes before it was sent.
fn recv(h: &History, i: u32) -> u64 {
    let Some(op) = h.ops.get(i as usize) else {
        return read_of(h, i).map_or(u64::MAX, |r| r.recv_ns.max(r.send_ns));
    };
    if op.outcome.is_open() {
        u64::MAX
    } else {
        op.recv_ns.max(op.send_ns)
    }
}

/// A node's send time.
fn send(h: &History, i: u32) -> u64 {
    match h.ops.get(i as usize) {
        Some(op) => op.send_ns,
        None => read_of(h, i).map_or(0, |r| r.send_ns),
    }
}

/// The read node `i` stands for (`None` for an op).
fn read_of(h: &History, i: u32) -> Option<&Read> {
    h.reads.get((i as usize).checked_sub(h.ops.len())?)
}

/// True when node `i` is an op of unknown outcome.
fn is_open(h: &History, i: u32) -> bool {
    h.ops.get(i as usize).is_some_and(|op| op.outcome.is_open())
}

/// An account edge.
fn account_edge(account: usize, from_seq: u64, to_seq: u64) -> Edge {
    Edge::Account {
        account,
        from_seq,
        to_seq,
    }
}

/// The cycle in words. `cycle[i].1` is the edge from node `i - 1` into node `i`
/// (the first one's from the last node).
fn describe_cycle(h: &History, cycle: &[(u32, Edge)]) -> String {
    if let Some(text) = describe_crossing(h, cycle) {
        return text;
    }
    let k = cycle.len();
    let mut parts: Vec<String> = (0..k.min(CYCLE_EDGES_SHOWN))
        .map(|i| describe_edge(h, cycle[(i + k - 1) % k].0, cycle[i]))
        .collect();
    if k > CYCLE_EDGES_SHOWN {
        parts.push(format!(
            "and {} more step(s) back to the first",
            k - CYCLE_EDGES_SHOWN
        ));
    }
    parts.join("; ")
}

/// The commonest cycle, two ops in opposite orders on two accounts, in one
/// sentence: "A comes before B on X (seq 4 < 5) but after it on Y (seq 9 > 8)".
fn describe_crossing(h: &History, cycle: &[(u32, Edge)]) -> Option<String> {
    let [(b, into_b), (a, into_a)] = cycle else {
        return None;
    };
    if read_of(h, *a).is_some() || read_of(h, *b).is_some() {
        return None;
    }
    let (
        Edge::Account {
            account: x,
            from_seq: a1,
            to_seq: b1,
        },
        Edge::Account {
            account: y,
            from_seq: b2,
            to_seq: a2,
        },
    ) = (into_b, into_a)
    else {
        return None;
    };
    Some(format!(
        "{} comes before {} on {} (seq {a1} < {b1}) but after it on {} (seq {a2} > {b2})",
        op_name(h, *a),
        op_name(h, *b),
        describe::account(h, *x),
        describe::account(h, *y)
    ))
}

/// One edge `from` → `to` of a cycle in words.
fn describe_edge(h: &History, from: u32, (to, edge): (u32, Edge)) -> String {
    match edge {
        Edge::Account {
            account,
            from_seq,
            to_seq,
        } => {
            let (x, y, acct) = (op_name(h, from), op_name(h, to), describe::account(h, account));
            match (read_of(h, from).is_some(), read_of(h, to).is_some()) {
                (false, true) => format!("{y} saw {acct} at seq {to_seq}, so it comes after {x} (seq {from_seq})"),
                (true, _) => format!("{x} saw {acct} at seq {from_seq}, so it comes before {y} (seq {to_seq}), which it did not see"),
                _ => format!("{x} comes before {y} on {acct} (seq {from_seq} < {to_seq})"),
            }
        }
        Edge::RealTime => format!(
            "{} was answered at {} ns, before {} was sent at {} ns",
            op_name(h, from),
            recv(h, from),
            op_name(h, to),
            send(h, to)
        ),
        // The times without the widening: both on their process's clock.
        Edge::OwnRealTime => format!(
            "{} was answered at {} ns, before {} of the same process was sent at {} ns (one clock)",
            op_name(h, from),
            recv(h, from).saturating_sub(h.processes.widened_ns),
            op_name(h, to),
            send(h, to).saturating_add(h.processes.widened_ns)
        ),
    }
}

/// "op #12 (transfer of 5 from x to y)", or for a read node "read #3 of x
/// (GetBalance sent at 10 ns, answered at 20 ns, saw seq 4, balance 70)".
fn op_name(h: &History, n: u32) -> String {
    if let Some(read) = read_of(h, n) {
        return format!(
            "read #{} of {} (GetBalance sent at {} ns, answered at {} ns, saw seq {}, balance {})",
            n as usize - h.ops.len(),
            describe::account(h, read.account as usize),
            read.send_ns,
            read.recv_ns,
            read.sequence,
            read.balance
        );
    }
    match decode(h, n) {
        Some(l) => describe::op_whole(h, &l),
        None => format!("op #{n}"),
    }
}

/// The position of op `n`'s entry in the transfer table, if it has one.
fn find_leg_index(h: &History, n: u32) -> Option<usize> {
    if h.ops.get(n as usize)?.kind != crate::history::Kind::Transfer {
        return None;
    }
    h.transfers.binary_search_by_key(&n, |l| l.op).ok()
}
