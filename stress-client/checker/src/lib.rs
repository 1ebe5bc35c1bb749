//! bank-checker: decides whether a recorded history of `bank.v1` operations
//! could have come from a correct server (one monitor per account). Pure and
//! synchronous, so it is tested on hand-built histories and reused anywhere.
//!
//! # What is checked
//!
//! Per account (its ops are those it ran plus transfers into it), in
//! sequence order: sequence numbers run 1, 2, 3… without duplicates
//! (`duplicate_sequence`) or gaps (`sequence_gap`); each reported balance
//! follows from the one before (`lost_update`), approvals never take more
//! than the balance (`overdraft`) and denials only happen when the amount
//! exceeds it (`unjustified_denial`); an op whose reply arrived before
//! another was sent has the lower sequence number (`real_time_order`); and
//! the state read after the run matches the replay (`final_balance`,
//! `final_sequence`). Globally, money is conserved (`conservation`).
//! Records that make no sense are reported as `malformed` and left out.
//!
//! # Ops of unknown outcome
//!
//! An op whose fate stayed unknown may or may not have happened, like
//! Jepsen's `:info`. It took no recorded sequence number, so it can only
//! show up as a missing one. A gap in an account's sequence numbers (or
//! between its last recorded op and its final sequence) is accepted when
//! that account still has at least as many unknown ops as missing numbers
//! and their amounts can explain the balance change across the gap (the
//! credits and debits they could make, each spent at most once across the
//! account's gaps). Unknown ops that no gap needs simply did not happen, so
//! a correct server passes. The verdict is impossible only when an account
//! with unknown ops has no final state to compare with: that account is
//! reported as `unresolved`. Conservation allows the sum of unknown deposits
//! (upwards) and unknown withdrawals (downwards). These bounds are necessary
//! conditions, so an unknown op can hide a violation but never fake one.
//!
//! # Cost
//!
//! One flat array of 8-byte keys (two per transfer, one per other applied
//! op) plus a few words per account; O(n log n) time, no per-op allocation.

mod conservation;
mod describe;
mod finals;
pub mod history;
mod index;
mod leg;
mod realtime;
mod report;
pub mod synth;
mod walk;

pub use history::{AccountIdx, AccountState, History, Kind, Op, Outcome, TransferLeg};
pub use report::{CheckStats, Report, Violation, ViolationKind, MAX_REPORTED_VIOLATIONS};

use index::Index;
use report::Sink;

/// Checks a history and returns the verdict. Never panics, whatever the input.
pub fn check(history: &History) -> Report {
    let mut sink = Sink::default();
    let mut stats = CheckStats {
        accounts: history.accounts.len() as u64,
        ops: history.ops.len() as u64,
        ..CheckStats::default()
    };
    let Some(index) = Index::build(history, &mut sink, &mut stats) else {
        return sink.into_report(stats);
    };
    for a in 0..history.accounts.len() {
        let end = walk::walk_account(history, &index, a, &mut sink, &mut stats);
        finals::check_account(history, a, &end, &mut sink, &mut stats);
    }
    drop(index);
    conservation::check(history, &mut sink, &mut stats);
    sink.into_report(stats)
}
