//! The checker's verdict: the kinds of violation, a bounded list of readable
//! details, and counters for a human report. Details are capped so a badly
//! broken run cannot blow up memory, but every violation is still counted.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};

/// How many violation details a [`Report`] keeps; the rest are only counted.
pub const MAX_REPORTED_VIOLATIONS: usize = 100;

/// What went wrong. Serializes as the snake_case name from [`ViolationKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ViolationKind {
    /// Two recorded ops took the same sequence number on one account.
    DuplicateSequence,
    /// Sequence numbers are missing and ops with unknown outcome cannot explain it.
    SequenceGap,
    /// A reported balance disagrees with the replayed one (an update was lost).
    LostUpdate,
    /// A withdrawal or transfer was approved for more than the balance held.
    Overdraft,
    /// A withdrawal or transfer was denied although the balance covered it.
    UnjustifiedDenial,
    /// An op finished before another was sent, yet took the later sequence number.
    RealTimeOrder,
    /// The balance read after the run is not the replayed end balance.
    FinalBalance,
    /// The sequence read after the run is not the number of ops applied.
    FinalSequence,
    /// Money was created or destroyed across all accounts.
    Conservation,
    /// Ops with unknown outcome leave the verdict impossible to establish.
    Unresolved,
    /// The history itself is inconsistent (bad indices, missing legs, ...).
    Malformed,
}

impl ViolationKind {
    /// Every kind, in declaration order.
    pub const ALL: [ViolationKind; 11] = [
        ViolationKind::DuplicateSequence,
        ViolationKind::SequenceGap,
        ViolationKind::LostUpdate,
        ViolationKind::Overdraft,
        ViolationKind::UnjustifiedDenial,
        ViolationKind::RealTimeOrder,
        ViolationKind::FinalBalance,
        ViolationKind::FinalSequence,
        ViolationKind::Conservation,
        ViolationKind::Unresolved,
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
            ViolationKind::FinalBalance => "final_balance",
            ViolationKind::FinalSequence => "final_sequence",
            ViolationKind::Conservation => "conservation",
            ViolationKind::Unresolved => "unresolved",
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
    /// Ops whose fate stayed unknown.
    pub unknown_ops: u64,
    /// Ops whose outcome came from `GetOperation` after the call failed.
    pub resolved_ops: u64,
    pub transfers: u64,
    /// Account-level sequence numbers checked (a transfer checks two).
    pub sequence_numbers_checked: u64,
    /// Missing sequence numbers attributed to ops with unknown outcome, i.e. a
    /// lower bound on how many of those ops did take effect.
    pub unknown_sequence_slots: u64,
    /// Accounts whose final balance or sequence could not be read.
    pub accounts_without_final_state: u64,
    /// False when some final balance is missing, so conservation was not checked.
    pub conservation_checked: bool,
    /// Every violation found, by kind (including those past the detail cap).
    pub violations_by_kind: BTreeMap<ViolationKind, u64>,
}

/// The verdict on a history.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// True when no violation was found.
    pub passed: bool,
    /// At most [`MAX_REPORTED_VIOLATIONS`] details, in the order found.
    pub violations: Vec<Violation>,
    /// Every violation found, including those without a kept detail.
    pub total_violations: u64,
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

    /// Turns the collected violations and the stats into the final report.
    pub(crate) fn into_report(self, mut stats: CheckStats) -> Report {
        stats.violations_by_kind = ViolationKind::ALL
            .iter()
            .zip(self.by_kind)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (*k, n))
            .collect();
        Report {
            passed: self.total == 0,
            violations: self.kept,
            total_violations: self.total,
            stats,
        }
    }
}
