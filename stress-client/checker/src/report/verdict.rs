//! The checker's verdict: the kinds of violation, a bounded list of readable
//! details, and counters for a human report. Details are capped so a badly
//! broken run cannot blow up memory, but every violation is still counted.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};

/// How many violation details a [`Report`] keeps; the rest are only counted.
pub const MAX_REPORTED_VIOLATIONS: usize = 100;

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ViolationKind {
    /// Two recorded ops took the same sequence number on one account.
    DuplicateSequence,
    /// Sequence numbers are missing and no op of unknown outcome can have taken them.
    SequenceGap,
    /// A reported balance disagrees with the replayed one (an update was lost).
    LostUpdate,
    /// A withdrawal or transfer was approved for more than the balance held.
    Overdraft,
    /// A withdrawal or transfer was denied although the balance covered it.
    UnjustifiedDenial,
    /// An op finished before another was sent, yet took the later sequence number.
    RealTimeOrder,
    /// No single order of all ops exists: sequence and real-time order form a cycle.
    OrderCycle,
    /// A balance change that no placement of the known and unknown ops explains.
    UnexplainedChange,
    /// A read missed an op answered before it was sent, or saw one sent after it was answered.
    StaleRead,
    /// A read reported a balance that the account never had at that sequence.
    ImpossibleRead,
    /// An op sent twice under one request id took effect twice.
    DoubleApply,
    /// Two answers for one request id disagree.
    ReplayMismatch,
    /// An answer the contract forbids (bad outcome, wrong request id, replayed flag, sequence 0).
    Protocol,
    /// Acknowledged state vanished: NOT_FOUND for an opened account, or state moving backwards.
    LostAck,
    /// The balance read after the run is not the replayed end balance.
    FinalBalance,
    /// Money was created or destroyed across all accounts.
    Conservation,
    /// The history itself is inconsistent (bad indices, missing legs, ...).
    Malformed,
}

impl ViolationKind {
    /// Every kind, in declaration order.
    pub const ALL: [ViolationKind; 17] = [
        ViolationKind::DuplicateSequence,
        ViolationKind::SequenceGap,
        ViolationKind::LostUpdate,
        ViolationKind::Overdraft,
        ViolationKind::UnjustifiedDenial,
        ViolationKind::RealTimeOrder,
        ViolationKind::OrderCycle,
        ViolationKind::UnexplainedChange,
        ViolationKind::StaleRead,
        ViolationKind::ImpossibleRead,
        ViolationKind::DoubleApply,
        ViolationKind::ReplayMismatch,
        ViolationKind::Protocol,
        ViolationKind::LostAck,
        ViolationKind::FinalBalance,
        ViolationKind::Conservation,
        ViolationKind::Malformed,
    ];

    /// The snake_case name used in JSON reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationKind::DuplicateSequence => "duplicate_sequence",
            ViolationKind::SequenceGap => "sequence_gap",
            ViolationKind::LostUpdate => "lost_update",
            ViolationKind::Overdraft => "overdraft",
            ViolationKind::UnjustifiedDenial => "unjustified_denial",
            ViolationKind::RealTimeOrder => "real_time_order",
            ViolationKind::OrderCycle => "order_cycle",
            ViolationKind::UnexplainedChange => "unexplained_change",
            ViolationKind::StaleRead => "stale_read",
            ViolationKind::ImpossibleRead => "impossible_read",
            ViolationKind::DoubleApply => "double_apply",
            ViolationKind::ReplayMismatch => "replay_mismatch",
            ViolationKind::Protocol => "protocol",
            ViolationKind::LostAck => "lost_ack",
            ViolationKind::FinalBalance => "final_balance",
            ViolationKind::Conservation => "conservation",
            ViolationKind::Malformed => "malformed",
        }
    }
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// Written by hand rather than derived so that `as_str` is the single source
// of the names, which the tests can check without a JSON dependency.
impl Serialize for ViolationKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let index = *self as u32;
        serializer.serialize_unit_variant("ViolationKind", index, self.as_str())
    }
}

/// One violation, explained in plain English.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub kind: ViolationKind,
    /// The account concerned, `(all accounts)` for conservation, or
    /// `(history)` / `#<index>` when the record names no valid account.
    pub account_id: String,
    pub detail: String,
}

/// What the verdict rests on, in numbers (`consistency.checked` in JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Checked {
    /// Money ops recorded (every outcome).
    pub ops: u64,
    /// Balance reads made under load.
    pub reads: u64,
    /// Ops sent twice under one request id.
    pub duplicates: u64,
    /// Transfers among the ops.
    pub transfers: u64,
    /// Ops of unknown outcome placed as having taken a sequence number
    /// (approved or denied) by the exact search.
    pub unknown_applied: u64,
    /// Ops of unknown outcome that, in that placement, never took effect.
    pub unknown_not_applied: u64,
}

/// Counters for a human report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckStats {
    pub accounts: u64,
    /// Every recorded op, whatever its outcome.
    pub ops: u64,
    /// Ops that took a sequence number (approved + denied).
    pub applied_ops: u64,
    pub approved_ops: u64,
    /// Ops denied for insufficient funds.
    pub denied_ops: u64,
    /// Ops known never to take effect.
    pub not_applied_ops: u64,
    /// Ops whose fate stayed unknown (or whose answer was invalid).
    pub unknown_ops: u64,
    /// Ops whose outcome came from `GetOperation` after the call failed.
    pub resolved_ops: u64,
    pub transfers: u64,
    /// Account-level sequence numbers checked (a transfer checks two).
    pub sequence_numbers_checked: u64,
    /// Missing sequence numbers filled by placed ops of unknown outcome.
    pub unknown_sequence_slots: u64,
    /// Accounts whose final balance or sequence could not be read.
    pub accounts_without_final_state: u64,
    /// False when some final balance is missing, so conservation was not checked.
    pub conservation_checked: bool,
    /// True when every op (and placed unknown op) fit one global order.
    pub order_checked: bool,
    /// How many times the one order of all ops sent the search for the ops
    /// of unknown outcome back to place them again (0: its first placement
    /// fit).
    pub order_retries: u64,
    /// Every violation found, by kind (including those past the detail cap).
    pub violations_by_kind: BTreeMap<ViolationKind, u64>,
}

/// The three verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Everything was checked and nothing was wrong.
    Passed,
    /// At least one violation (whatever else could not be decided).
    Failed,
    /// No violation, but something could not be decided (see the reasons).
    Inconclusive,
}

impl Verdict {
    /// "passed", "failed" or "inconclusive".
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// The verdict on a history.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub verdict: Verdict,
    /// True only for [`Verdict::Passed`].
    pub passed: bool,
    /// At most [`MAX_REPORTED_VIOLATIONS`] details, in the order found.
    pub violations: Vec<Violation>,
    /// Every violation found, including those without a kept detail.
    pub total_violations: u64,
    /// Why the verdict could not be decided (empty unless something was left
    /// open: unread final states, the search budget...).
    pub undecided: Vec<String>,
    pub checked: Checked,
    pub stats: CheckStats,
}

impl Report {
    /// How many violations of `kind` were found (not only the kept details).
    pub fn count(&self, kind: ViolationKind) -> u64 {
        self.stats.violations_by_kind.get(&kind).copied().unwrap_or(0)
    }
}

/// Collects violations while the checks run: counts all, keeps the first few.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    kept: Vec<Violation>,
    total: u64,
    by_kind: [u64; ViolationKind::ALL.len()],
    undecided: Vec<String>,
}

impl Sink {
    /// Records one violation. `detail` only runs while details are still
    /// kept, so a flood of violations costs no formatting.
    pub(crate) fn report(&mut self, kind: ViolationKind, account_id: &str, detail: impl FnOnce() -> String) {
        self.total = self.total.saturating_add(1);
        let slot = &mut self.by_kind[kind as usize];
        *slot = slot.saturating_add(1);
        if self.kept.len() < MAX_REPORTED_VIOLATIONS {
            self.kept.push(Violation {
                kind,
                account_id: account_id.to_owned(),
                detail: detail(),
            });
        }
    }

    /// Records something the check could not decide (kept once per reason).
    pub(crate) fn undecided(&mut self, reason: String) {
        if self.undecided.len() < MAX_REPORTED_VIOLATIONS && !self.undecided.contains(&reason) {
            self.undecided.push(reason);
        }
    }

    /// True when a violation was collected.
    pub(crate) fn failed(&self) -> bool {
        self.total > 0
    }

    /// True when something was left undecided.
    pub(crate) fn left_open(&self) -> bool {
        !self.undecided.is_empty()
    }

    /// Adds everything another sink collected.
    pub(crate) fn absorb(&mut self, other: Sink) {
        self.total = self.total.saturating_add(other.total);
        for (mine, theirs) in self.by_kind.iter_mut().zip(other.by_kind) {
            *mine = mine.saturating_add(theirs);
        }
        let room = MAX_REPORTED_VIOLATIONS.saturating_sub(self.kept.len());
        self.kept.extend(other.kept.into_iter().take(room));
        for reason in other.undecided {
            self.undecided(reason);
        }
    }

    /// Turns the collected violations and the stats into the final report.
    pub(crate) fn into_report(self, checked: Checked, mut stats: CheckStats) -> Report {
        stats.violations_by_kind = ViolationKind::ALL
            .iter()
            .zip(self.by_kind)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (*k, n))
            .collect();
        let verdict = if self.total > 0 {
            Verdict::Failed
        } else if self.undecided.is_empty() {
            Verdict::Passed
        } else {
            Verdict::Inconclusive
        };
        Report {
            verdict,
            passed: verdict == Verdict::Passed,
            violations: self.kept,
            total_violations: self.total,
            undecided: self.undecided,
            checked,
            stats,
        }
    }
}
