//! Groups every account's views of the recorded ops into one flat array of
//! 8-byte keys (`sequence << 32 | entry`), sorted by sequence per account, so
//! later checks are linear sweeps or binary searches. The first build holds
//! the ops that took a sequence number; the second, after the exact search,
//! adds the ops of unknown outcome where it placed them (for the global
//! order, the reads and the final checks). It also rejects malformed records.

use crate::history::leg::{key, key_seq, leg_is_valid, Leg};
use crate::history::{History, Kind, Outcome};
use crate::report::describe;
use crate::report::problem::{self, Problem};
use crate::report::{CheckStats, Sink, ViolationKind};

/// Where the exact search (`placement`) put one op of unknown outcome: what
/// the second build adds to the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placed {
    pub op: u32,
    pub approved: bool,
    /// Sequence number and balance after it, on the op's account (a
    /// transfer's source) and on a transfer's target.
    pub seq: u64,
    pub balance: u64,
    pub to_seq: u64,
    pub to_balance: u64,
}

/// The per-account, sequence-sorted views of a history.
#[derive(Debug, Default)]
pub(crate) struct Index {
    keys: Vec<u64>,
    starts: Vec<u32>,
    ends: Vec<u32>,
}

/// The op an entry number belongs to (a transfer's target view names its op).
pub(crate) fn entry_op(h: &History, entry: u32) -> Option<u32> {
    let e = entry as usize;
    if e < h.ops.len() {
        return Some(entry);
    }
    h.transfers.get(e - h.ops.len()).map(|l| l.op)
}

/// What a build reports: the first build reports malformed records, the
/// second (which sees the same records) stays quiet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    First,
    Placed,
}

impl Index {
    /// Account `a`'s keys, sorted by sequence.
    pub(crate) fn keys(&self, a: usize) -> &[u64] {
        let start = self.starts.get(a).copied().unwrap_or(0) as usize;
        let end = self.ends.get(a).copied().unwrap_or(0) as usize;
        self.keys.get(start..end).unwrap_or(&[])
    }

    /// The position in account `a`'s keys of the first view with sequence `seq` or more.
    pub(crate) fn position(&self, a: usize, seq: u64) -> usize {
        self.keys(a).partition_point(|&k| key_seq(k) < seq)
    }

    /// Builds the index; `placed` (sorted by op) adds the placed unknown ops.
    /// `None` when the history is too large for 32-bit entry numbers.
    pub(crate) fn build(
        h: &History,
        placed: &[Placed],
        pass: Pass,
        sink: &mut Sink,
        stats: &mut CheckStats,
    ) -> Option<Index> {
        let entries = h.ops.len().checked_add(h.transfers.len());
        if entries.is_none_or(|n| n >= u32::MAX as usize) {
            if pass == Pass::First {
                report_too_large(h, sink);
            }
            return None;
        }
        if pass == Pass::First {
            report_bad_legs(h, sink);
        }
        let mut index = Index::default();
        let counts = index.count(h, placed, pass, sink, stats);
        index.fill(h, placed, &counts, pass, sink);
        for a in 0..h.accounts.len() {
            let (start, end) = (index.starts[a] as usize, index.ends[a] as usize);
            index.keys[start..end].sort_unstable();
        }
        Some(index)
    }

    /// First pass: counts each account's views, tallies stats and reports
    /// malformed ops (first build only).
    fn count(
        &mut self,
        h: &History,
        placed: &[Placed],
        pass: Pass,
        sink: &mut Sink,
        stats: &mut CheckStats,
    ) -> Vec<u32> {
        let mut counts = vec![0u32; h.accounts.len()];
        let mut legs = LegCursor::default();
        let mut spots = PlacedCursor::default();
        for i in 0..h.ops.len() {
            let leg = legs.leg_for(h, i);
            let views = classify(h, i, leg, spots.placed_for(placed, i));
            if pass == Pass::First {
                tally(h, i, stats);
                if let Some(problem) = views.problem {
                    report_problem(h, i, problem, sink);
                }
            }
            for view in [views.source, views.target].into_iter().flatten() {
                counts[view.account] = counts[view.account].saturating_add(1);
            }
        }
        counts
    }

    /// Second pass: places every view in its account's slice.
    fn fill(&mut self, h: &History, placed: &[Placed], counts: &[u32], pass: Pass, sink: &mut Sink) {
        self.starts = Vec::with_capacity(counts.len());
        let mut total: u32 = 0;
        for &c in counts {
            self.starts.push(total);
            total = total.saturating_add(c);
        }
        self.ends = self.starts.clone();
        self.keys = vec![0; total as usize];
        let mut legs = LegCursor::default();
        let mut spots = PlacedCursor::default();
        for i in 0..h.ops.len() {
            let views = classify(h, i, legs.leg_for(h, i), spots.placed_for(placed, i));
            for view in [views.source, views.target].into_iter().flatten() {
                self.place(h, view, pass, sink);
            }
        }
    }

    /// Appends one view to its account's slice. A sequence number above
    /// `u32::MAX` would need four billion ops, so it is reported as
    /// malformed (and left out) rather than as a gap; that bound is what
    /// lets a key pack the sequence and the entry into 64 bits.
    fn place(&mut self, h: &History, view: View, pass: Pass, sink: &mut Sink) {
        if view.seq > u64::from(u32::MAX) {
            if pass == Pass::First {
                let id = describe::account(h, view.account);
                sink.report(ViolationKind::Malformed, &id, || {
                    problem::impossible_sequence(h, view.entry, view.seq)
                });
            }
            return;
        }
        let end = &mut self.ends[view.account];
        if let Some(slot) = self.keys.get_mut(*end as usize) {
            *slot = key(view.seq, view.entry);
            *end += 1;
        }
    }
}

/// Reports a history too large for the checker's 32-bit entry numbers.
fn report_too_large(h: &History, sink: &mut Sink) {
    sink.report(ViolationKind::Malformed, describe::HISTORY, || {
        format!(
            "the history has {} ops and {} transfer legs; the checker handles fewer than {} in total",
            h.ops.len(),
            h.transfers.len(),
            u32::MAX
        )
    });
}

/// Reports every transfer-table entry that cannot be trusted.
fn report_bad_legs(h: &History, sink: &mut Sink) {
    for (t, leg) in h.transfers.iter().enumerate() {
        if !leg_is_valid(h, t) {
            sink.report(ViolationKind::Malformed, describe::HISTORY, || {
                problem::bad_leg(h, t, leg)
            });
        }
    }
}

/// Adds op `i` to the outcome counters.
fn tally(h: &History, i: usize, stats: &mut CheckStats) {
    let op = &h.ops[i];
    let counter = match op.outcome {
        Outcome::Approved => &mut stats.approved_ops,
        Outcome::InsufficientFunds => &mut stats.denied_ops,
        Outcome::NotApplied => &mut stats.not_applied_ops,
        Outcome::Unknown | Outcome::Invalid => &mut stats.unknown_ops,
    };
    *counter += 1;
    stats.applied_ops += u64::from(op.outcome.took_sequence());
    stats.resolved_ops += u64::from(op.resolved);
    stats.transfers += u64::from(op.kind == Kind::Transfer);
}

/// Walks the transfer table alongside the ops (both sorted by op index) so
/// each op finds its leg in amortised constant time.
#[derive(Debug, Default)]
pub(crate) struct LegCursor {
    next: usize,
}

impl LegCursor {
    /// The valid leg of op `i`, if any. Must be called with increasing `i`.
    pub(crate) fn leg_for(&mut self, h: &History, i: usize) -> Option<usize> {
        while h.transfers.get(self.next).is_some_and(|l| (l.op as usize) < i) {
            self.next += 1;
        }
        let here = h.transfers.get(self.next)?;
        let found = here.op as usize == i && leg_is_valid(h, self.next);
        found.then_some(self.next)
    }
}

/// Walks the placements (sorted by op) alongside the ops.
#[derive(Debug, Default)]
struct PlacedCursor {
    next: usize,
}

impl PlacedCursor {
    /// The placement of op `i`, if any. Must be called with increasing `i`.
    fn placed_for<'a>(&mut self, placed: &'a [Placed], i: usize) -> Option<&'a Placed> {
        while placed.get(self.next).is_some_and(|p| (p.op as usize) < i) {
            self.next += 1;
        }
        placed.get(self.next).filter(|p| p.op as usize == i)
    }
}

/// One account's view of an op: which account, which entry, which sequence.
#[derive(Debug, Clone, Copy)]
struct View {
    account: usize,
    entry: u32,
    seq: u64,
}

/// The usable views of op `i` and the first problem found with it.
#[derive(Debug, Default)]
struct Views {
    source: Option<View>,
    target: Option<View>,
    problem: Option<Problem>,
}

/// Decides which views of op `i` go into the index. Both passes call it, so
/// they always agree.
fn classify(h: &History, i: usize, leg: Option<usize>, placed: Option<&Placed>) -> Views {
    let op = &h.ops[i];
    let mut v = Views::default();
    if op.account as usize >= h.accounts.len() {
        v.problem = Some(Problem::AccountOutOfRange);
        return v;
    }
    if op.kind == Kind::Transfer && leg.is_none() {
        v.problem.get_or_insert(Problem::MissingLeg);
    }
    let target = leg.and_then(|t| h.transfers.get(t).map(|l| (t, l)));
    if let Some(p) = placed.filter(|_| op.outcome.is_open()) {
        v.source = view(op.account as usize, i as u32, p.seq);
        if let Some((t, l)) = target {
            v.target = view(l.to_account as usize, (h.ops.len() + t) as u32, p.to_seq);
        }
        return v;
    }
    if !op.outcome.took_sequence() {
        return v;
    }
    if op.kind == Kind::Deposit && op.outcome == Outcome::InsufficientFunds {
        v.problem = Some(Problem::DeniedDeposit);
        return v;
    }
    if op.recv_ns < op.send_ns {
        v.problem.get_or_insert(Problem::RecvBeforeSend);
    }
    v.source = view(op.account as usize, i as u32, op.sequence);
    if v.source.is_none() {
        v.problem.get_or_insert(Problem::ZeroSequence);
    }
    if let Some((t, l)) = target {
        v.target = view(l.to_account as usize, (h.ops.len() + t) as u32, l.to_sequence);
        if v.target.is_none() {
            v.problem.get_or_insert(Problem::ZeroTargetSequence);
        }
    }
    v
}

/// A view, unless its sequence is 0 (which the server never hands out).
fn view(account: usize, entry: u32, seq: u64) -> Option<View> {
    (seq != 0).then_some(View { account, entry, seq })
}

/// Reports a problem op under the most specific account name available.
fn report_problem(h: &History, i: usize, problem: Problem, sink: &mut Sink) {
    let op = &h.ops[i];
    let id = describe::account(h, op.account as usize);
    let leg = Leg::source(i as u32, op);
    sink.report(problem.kind(), &id, || problem.detail(h, &leg));
}
