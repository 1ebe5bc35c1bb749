//! One order for everything: the ops (a transfer is one node with two legs)
//! and each account's sequence order plus real-time order (A answered before
//! B was sent) must form an acyclic graph, or no single order of all ops
//! exists and the history is neither linearizable nor serializable.
//! Per-account checks cannot see this: two opposite transfers applied in two
//! critical sections each replay fine on both accounts.
//!
//! Kahn's algorithm without building the graph: a node is ready when its
//! predecessor on each of its accounts is done and every op answered before
//! it was sent is done. The latter is one pointer into the ops sorted by
//! reply time (the first op not yet done) and one into the ops sorted by send
//! time (released while they were sent no later than that op's reply), so
//! the whole check is two sorts and a linear sweep: O(n log n).

use crate::describe;
use crate::history::History;
use crate::index::{entry_op, key_entry, key_seq, Index};
use crate::leg::decode;
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

/// Checks that the ops fit one order; reports a cycle if they do not.
pub(crate) fn check(h: &History, index: &Index, sink: &mut Sink) -> Order {
    let mut g = Graph::new(h, index);
    let nodes = g.by_recv.len();
    let mut done = 0;
    g.release();
    while let Some(n) = g.ready.pop() {
        g.pending[n as usize] = DONE;
        done += 1;
        g.finish(n);
    }
    if done == nodes {
        return Order::Acyclic;
    }
    let Some(cycle) = g.find_cycle() else {
        return Order::Cycle;
    };
    if let Some(spot) = misplaced(h, &cycle) {
        return spot;
    }
    g.report(&cycle, sink);
    Order::Cycle
}

/// The spots of the ops of unknown outcome a cycle runs through, each op's
/// place on the account the cycle leaves it by, latest sent first.
fn misplaced(h: &History, cycle: &[(u32, Edge)]) -> Option<Order> {
    let k = cycle.len();
    let mut open: Vec<usize> = (0..k)
        .filter(|&i| h.ops[cycle[i].0 as usize].outcome.is_open())
        .collect();
    open.sort_by_key(|&i| std::cmp::Reverse(h.ops[cycle[i].0 as usize].send_ns));
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
    fn new(h: &'a History, index: &'a Index) -> Graph<'a> {
        let mut pending = vec![NOT_NODE; h.ops.len()];
        let mut pos = vec![NO_POS; h.ops.len()];
        let mut to_pos = vec![NO_POS; h.transfers.len()];
        for a in 0..h.accounts.len() {
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
                *slot += u8::from(p > 0);
            }
        }
        let mut by_recv: Vec<u32> = (0..h.ops.len() as u32)
            .filter(|&i| pending[i as usize] != NOT_NODE)
            .collect();
        let mut by_send = by_recv.clone();
        by_recv.sort_unstable_by_key(|&i| recv(h, i));
        by_send.sort_unstable_by_key(|&i| h.ops[i as usize].send_ns);
        Graph {
            h,
            index,
            pos,
            to_pos,
            pending,
            by_recv,
            by_send,
            done_recv: 0,
            released: 0,
            ready: Vec::new(),
        }
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
            if self.done_recv < self.by_recv.len() && self.h.ops[b as usize].send_ns > bound {
                break;
            }
            self.released += 1;
            self.satisfy(b);
        }
    }

    /// Node `n` is done: its successors on each account lose a predecessor,
    /// and the real-time gates move on.
    fn finish(&mut self, n: u32) {
        for (a, pos) in self.positions(n) {
            if let Some(&k) = self.index.keys(a).get(pos + 1) {
                if let Some(op) = entry_op(self.h, key_entry(k)) {
                    self.satisfy(op);
                }
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
    }

    /// Where op `n`'s views sit: (account, position in its keys).
    fn positions(&self, n: u32) -> impl Iterator<Item = (usize, usize)> {
        let h = self.h;
        let op = &h.ops[n as usize];
        let source = Some(self.pos[n as usize])
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
        for (a, pos) in self.positions(n) {
            let Some(&k) = pos.checked_sub(1).and_then(|p| self.index.keys(a).get(p)) else {
                continue;
            };
            let Some(op) = entry_op(self.h, key_entry(k)) else {
                continue;
            };
            if self.pending[op as usize] != DONE {
                let here = self.index.keys(a)[pos];
                return Some((
                    op,
                    Edge::Account {
                        account: a,
                        from_seq: key_seq(k),
                        to_seq: key_seq(here),
                    },
                ));
            }
        }
        let first = *self.by_recv.get(self.done_recv)?;
        (recv(self.h, first) < self.h.ops[n as usize].send_ns).then_some((first, Edge::RealTime))
    }

    /// Reports the cycle, or leaves the verdict open when it runs through an
    /// op of unknown outcome (where it was placed was one choice of several).
    fn report(&self, cycle: &[(u32, Edge)], sink: &mut Sink) {
        let h = self.h;
        let accounts: std::collections::BTreeSet<usize> = cycle
            .iter()
            .filter_map(|(_, e)| match e {
                Edge::Account { account, .. } => Some(*account),
                Edge::RealTime => None,
            })
            .collect();
        if accounts.len() < 2 {
            // On one account this is a real-time order violation, which the
            // replay of that account reports in its own words.
            return;
        }
        let text = describe_cycle(h, cycle);
        if cycle.iter().any(|(n, _)| h.ops[*n as usize].outcome.is_open()) {
            sink.undecided(format!("the placement chosen for the ops of unknown outcome leaves a cycle in the order of all ops: {text}"));
            return;
        }
        let id = accounts
            .iter()
            .map(|&a| describe::account(h, a))
            .collect::<Vec<_>>()
            .join(", ");
        sink.report(ViolationKind::OrderCycle, &id, || {
            format!("{text}: no single order of all operations exists (order cycle)")
        });
    }
}

/// A node's reply time for real-time order: never before it was sent, and
/// `u64::MAX` for an op without a reply (which then precedes nothing).
fn recv(h: &History, i: u32) -> u64 {
    let op = &h.ops[i as usize];
    if op.outcome.is_open() {
        u64::MAX
    } else {
        op.recv_ns.max(op.send_ns)
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
        } => format!(
            "{} comes before {} on {} (seq {from_seq} < {to_seq})",
            op_name(h, from),
            op_name(h, to),
            describe::account(h, account)
        ),
        Edge::RealTime => format!(
            "{} was answered at {} ns, before {} was sent at {} ns",
            op_name(h, from),
            h.ops[from as usize].recv_ns,
            op_name(h, to),
            h.ops[to as usize].send_ns
        ),
    }
}

/// "op #12 (transfer of 5 from x to y)".
fn op_name(h: &History, n: u32) -> String {
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
