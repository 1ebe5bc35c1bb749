//! Groups every account's views of the recorded ops into one flat array of
//! 8-byte keys (`sequence << 32 | entry`), sorted by sequence per account, so
//! later checks are linear sweeps. It also rejects malformed records and
//! sums what the ops with unknown outcome could have done to each account.

use crate::describe;
use crate::history::{History, Kind, Outcome};
use crate::leg::{leg_is_valid, Leg};
use crate::report::{CheckStats, Sink, ViolationKind};

/// What the ops with unknown outcome touching one account could have done:
/// how many there are and how much they could take out or put in at most.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Budget {
    pub count: u64,
    pub debit: u128,
    pub credit: u128,
}

impl Budget {
    fn add(&mut self, amount: u64, credit: bool) {
        self.count = self.count.saturating_add(1);
        let side = if credit { &mut self.credit } else { &mut self.debit };
        *side = side.saturating_add(u128::from(amount));
    }

    /// True when `missing` of these ops could have taken effect and moved the
    /// balance by `delta` in total, ending at `after` (never negative). This
    /// is a necessary condition only: it does not try every subset of amounts.
    pub(crate) fn covers(&self, missing: u64, delta: i128, after: i128) -> bool {
        let credit = i128::try_from(self.credit).unwrap_or(i128::MAX);
        let debit = i128::try_from(self.debit).unwrap_or(i128::MAX);
        let moves = delta == 0 || missing > 0;
        after >= 0 && moves && missing <= self.count && delta <= credit && -delta <= debit
    }

    /// Takes what [`Budget::covers`] allowed out of the budget, so later gaps
    /// cannot spend the same unknown ops (or amounts) again.
    pub(crate) fn consume(&mut self, missing: u64, delta: i128) {
        self.count = self.count.saturating_sub(missing);
        let moved = delta.unsigned_abs();
        let side = if delta > 0 {
            &mut self.credit
        } else {
            &mut self.debit
        };
        *side = side.saturating_sub(moved);
    }
}

/// The per-account, sequence-sorted views of a history.
#[derive(Debug, Default)]
pub(crate) struct Index {
    keys: Vec<u64>,
    starts: Vec<u32>,
    ends: Vec<u32>,
    budgets: Vec<Budget>,
}

/// The sequence number packed in a key.
pub(crate) fn key_seq(key: u64) -> u64 {
    key >> 32
}

/// The entry number (see [`crate::leg::decode`]) packed in a key.
pub(crate) fn key_entry(key: u64) -> u32 {
    key as u32
}

impl Index {
    /// Account `a`'s keys, sorted by sequence.
    pub(crate) fn keys(&self, a: usize) -> &[u64] {
        let start = self.starts.get(a).copied().unwrap_or(0) as usize;
        let end = self.ends.get(a).copied().unwrap_or(0) as usize;
        self.keys.get(start..end).unwrap_or(&[])
    }

    /// What account `a`'s ops with unknown outcome could have done.
    pub(crate) fn budget(&self, a: usize) -> Budget {
        self.budgets.get(a).copied().unwrap_or_default()
    }

    /// Builds the index, reporting malformed records (which it leaves out).
    /// `None` when the history is too large for 32-bit entry numbers.
    pub(crate) fn build(h: &History, sink: &mut Sink, stats: &mut CheckStats) -> Option<Index> {
        let entries = h.ops.len().checked_add(h.transfers.len());
        if entries.is_none_or(|n| n > u32::MAX as usize) {
            sink.report(ViolationKind::Malformed, describe::HISTORY, || {
                format!(
                    "the history has {} ops and {} transfer legs; the checker handles at most {} in total",
                    h.ops.len(),
                    h.transfers.len(),
                    u32::MAX
                )
            });
            return None;
        }
        report_bad_legs(h, sink);
        let mut index = Index::default();
        let counts = index.count(h, sink, stats);
        index.fill(h, &counts, sink);
        for a in 0..h.accounts.len() {
            let (start, end) = (index.starts[a] as usize, index.ends[a] as usize);
            index.keys[start..end].sort_unstable();
        }
        Some(index)
    }

    /// First pass: counts each account's views, sums the unknown budgets,
    /// tallies stats and reports malformed ops.
    fn count(&mut self, h: &History, sink: &mut Sink, stats: &mut CheckStats) -> Vec<u32> {
        let mut counts = vec![0u32; h.accounts.len()];
        self.budgets = vec![Budget::default(); h.accounts.len()];
        let mut legs = LegCursor::default();
        for i in 0..h.ops.len() {
            let leg = legs.leg_for(h, i);
            tally(h, i, stats);
            let views = classify(h, i, leg);
            if let Some(problem) = views.problem {
                report_problem(h, i, problem, sink);
            }
            for view in [views.source, views.target].into_iter().flatten() {
                counts[view.account] = counts[view.account].saturating_add(1);
            }
            self.add_unknown(h, i, leg);
        }
        counts
    }

    /// Adds op `i` to the unknown budgets of the accounts it touches, if its
    /// outcome is unknown.
    fn add_unknown(&mut self, h: &History, i: usize, leg: Option<usize>) {
        let op = &h.ops[i];
        if op.outcome != Outcome::Unknown {
            return;
        }
        if let Some(budget) = self.budgets.get_mut(op.account as usize) {
            budget.add(op.amount, op.kind == Kind::Deposit);
        }
        let target = leg.and_then(|t| h.transfers.get(t));
        if let Some(b) = target.and_then(|l| self.budgets.get_mut(l.to_account as usize)) {
            b.add(op.amount, true);
        }
    }

    /// Second pass: places every view in its account's slice.
    fn fill(&mut self, h: &History, counts: &[u32], sink: &mut Sink) {
        self.starts = Vec::with_capacity(counts.len());
        let mut total: u32 = 0;
        for &c in counts {
            self.starts.push(total);
            total = total.saturating_add(c);
        }
        self.ends = self.starts.clone();
        self.keys = vec![0; total as usize];
        let mut legs = LegCursor::default();
        for i in 0..h.ops.len() {
            let views = classify(h, i, legs.leg_for(h, i));
            for view in [views.source, views.target].into_iter().flatten() {
                self.place(h, view, sink);
            }
        }
    }

    /// Appends one view to its account's slice. A sequence number above
    /// `u32::MAX` would need four billion ops, so it is reported as
    /// malformed (and left out) rather than as a gap; that bound is what
    /// lets a key pack the sequence and the entry into 64 bits.
    fn place(&mut self, h: &History, view: View, sink: &mut Sink) {
        if view.seq > u64::from(u32::MAX) {
            let id = describe::account(h, view.account);
            sink.report(ViolationKind::Malformed, &id, || {
                describe::impossible_sequence(h, view.entry, view.seq)
            });
            return;
        }
        let end = &mut self.ends[view.account];
        if let Some(slot) = self.keys.get_mut(*end as usize) {
            *slot = (view.seq << 32) | u64::from(view.entry);
            *end += 1;
        }
    }
}

/// Reports every transfer-table entry that cannot be trusted.
fn report_bad_legs(h: &History, sink: &mut Sink) {
    for (t, leg) in h.transfers.iter().enumerate() {
        if !leg_is_valid(h, t) {
            sink.report(ViolationKind::Malformed, describe::HISTORY, || {
                describe::bad_leg(h, t, leg)
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
        Outcome::Unknown => &mut stats.unknown_ops,
    };
    *counter += 1;
    stats.applied_ops += u64::from(op.outcome.took_sequence());
    stats.resolved_ops += u64::from(op.resolved);
    stats.transfers += u64::from(op.kind == Kind::Transfer);
}

/// Walks the transfer table alongside the ops (both sorted by op index) so
/// each op finds its leg in amortised constant time.
#[derive(Debug, Default)]
struct LegCursor {
    next: usize,
}

impl LegCursor {
    /// The valid leg of op `i`, if any. Must be called with increasing `i`.
    fn leg_for(&mut self, h: &History, i: usize) -> Option<usize> {
        while h.transfers.get(self.next).is_some_and(|l| (l.op as usize) < i) {
            self.next += 1;
        }
        let here = h.transfers.get(self.next)?;
        let found = here.op as usize == i && leg_is_valid(h, self.next);
        found.then_some(self.next)
    }
}

/// One account's view of an op: which account, which entry, which sequence.
#[derive(Debug, Clone, Copy)]
struct View {
    account: usize,
    entry: u32,
    seq: u64,
}

/// Why an op's record cannot be (fully) used.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Problem {
    AccountOutOfRange,
    MissingLeg,
    DeniedDeposit,
    ZeroSequence,
    ZeroTargetSequence,
    RecvBeforeSend,
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
fn classify(h: &History, i: usize, leg: Option<usize>) -> Views {
    let op = &h.ops[i];
    let mut v = Views::default();
    if op.account as usize >= h.accounts.len() {
        v.problem = Some(Problem::AccountOutOfRange);
        return v;
    }
    if op.kind == Kind::Transfer && leg.is_none() {
        v.problem.get_or_insert(Problem::MissingLeg);
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
    if let Some(l) = leg.and_then(|t| h.transfers.get(t).map(|l| (t, l))) {
        v.target = view(
            l.1.to_account as usize,
            (h.ops.len() + l.0) as u32,
            l.1.to_sequence,
        );
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

/// Reports a malformed op under the most specific account name available.
fn report_problem(h: &History, i: usize, problem: Problem, sink: &mut Sink) {
    let op = &h.ops[i];
    let id = describe::account(h, op.account as usize);
    let leg = Leg::source(i as u32, op);
    sink.report(ViolationKind::Malformed, &id, || {
        describe::problem(h, &leg, problem)
    });
}
