//! Compares each account's replay with the state read after the run: the
//! final sequence must be the last one handed out and the final balance the
//! replayed one, give or take what trailing ops of unknown outcome could do.

use crate::describe;
use crate::history::{AccountState, History};
use crate::report::{CheckStats, Sink, ViolationKind};
use crate::walk::AccountEnd;

/// Checks account `a`'s final state against the end of its replay.
pub(crate) fn check_account(
    h: &History,
    a: usize,
    end: &AccountEnd,
    sink: &mut Sink,
    stats: &mut CheckStats,
) {
    let Some(state) = h.accounts.get(a) else {
        return;
    };
    if state.final_balance.is_none() || state.final_sequence.is_none() {
        stats.accounts_without_final_state += 1;
        report_unresolved(state, end, sink);
    }
    match state.final_sequence {
        Some(seq) => check_sequence(state, seq, end, sink, stats),
        None => check_balance(state, 0, end, sink),
    }
}

/// With the final sequence known: ops past the last recorded one must be
/// ops of unknown outcome, and the balance must be reachable with them.
fn check_sequence(state: &AccountState, seq: u64, end: &AccountEnd, sink: &mut Sink, stats: &mut CheckStats) {
    let last = end.last_seq;
    let missing = seq.saturating_sub(last);
    if seq < last || missing > end.budget.count {
        sink.report(ViolationKind::FinalSequence, &state.account_id, || {
            let n = end.budget.count;
            let tail = if seq < last {
                String::new()
            } else {
                format!(", and only {n} op(s) of unknown outcome could have taken the other {missing}")
            };
            format!(
                "the final sequence read after the run is {seq}, but the recorded ops took sequence numbers up to {last}{tail}"
            )
        });
        return;
    }
    stats.unknown_sequence_slots += missing;
    check_balance(state, missing, end, sink);
}

/// The final balance must equal the replayed one, unless `missing` trailing
/// ops of unknown outcome (at least one if the final sequence is unknown)
/// can account for the difference.
fn check_balance(state: &AccountState, missing: u64, end: &AccountEnd, sink: &mut Sink) {
    let Some(fb) = state.final_balance else {
        return;
    };
    let delta = i128::from(fb) - end.balance;
    let missing = match state.final_sequence {
        Some(_) => missing,
        None => u64::from(delta != 0),
    };
    if end.budget.covers(missing, delta, i128::from(fb)) {
        return;
    }
    sink.report(ViolationKind::FinalBalance, &state.account_id, || {
        let how = describe::replay(&end.anchor, end.last_seq, end.balance);
        let b = end.budget;
        let unknown = match b.count {
            0 => String::new(),
            n => format!(
                ", a change that {n} op(s) of unknown outcome cannot explain (at most -{}/+{})",
                b.debit, b.credit
            ),
        };
        format!(
            "the final balance read after the run is {fb}, but it should be {} ({how}){unknown}",
            end.balance
        )
    });
}

/// Ops of unknown outcome on an account whose final state could not be read:
/// nothing can tell whether they took effect, so no verdict is possible.
fn report_unresolved(state: &AccountState, end: &AccountEnd, sink: &mut Sink) {
    if end.unknown_ops == 0 {
        return;
    }
    sink.report(ViolationKind::Unresolved, &state.account_id, || {
        let missing = match (state.final_balance, state.final_sequence) {
            (None, None) => "balance and sequence",
            (None, Some(_)) => "balance",
            _ => "sequence",
        };
        format!(
            "{} op(s) of unknown outcome touched this account and its final {missing} could not be read, so whether they took effect cannot be established",
            end.unknown_ops
        )
    });
}
