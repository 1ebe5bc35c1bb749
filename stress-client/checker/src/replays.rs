//! Retries under load: an op sent twice under one request id must take
//! effect once. Both answers must carry the same outcome, balance and
//! sequence (`replay_mismatch`), exactly one with `replayed = false` (when
//! both went out at once either may be the first; a copy sent after the
//! first answer must be the replay); two first applications at different
//! sequence numbers are a `double_apply`. A copy answered ABORTED (the
//! original still waiting for funds) or with an error says nothing.

use crate::describe;
use crate::history::{Duplicate, History, Op, Outcome};
use crate::leg::find_leg;
use crate::report::{Sink, ViolationKind};

/// Checks every duplicate send against its original.
pub(crate) fn check(h: &History, sink: &mut Sink) {
    for (i, d) in h.duplicates.iter().enumerate() {
        let Some(op) = h.ops.get(d.op as usize) else {
            sink.report(ViolationKind::Malformed, describe::HISTORY, || {
                format!(
                    "duplicate #{i} names op #{}, but the history has only {} ops",
                    d.op,
                    h.ops.len()
                )
            });
            continue;
        };
        let id = describe::account(h, op.account as usize);
        if let Some((kind, why)) = judge(h, op, d) {
            sink.report(kind, &id, || {
                format!(
                    "{} was sent twice under one request id ({}): {why}",
                    describe::op_by_index(h, d.op),
                    timing(d)
                )
            });
        }
    }
}

fn timing(d: &Duplicate) -> &'static str {
    if d.at_once {
        "both copies at once"
    } else {
        "the copy after the first answer"
    }
}

/// The violation one duplicate shows, if any.
fn judge(h: &History, op: &Op, d: &Duplicate) -> Option<(ViolationKind, String)> {
    if d.outcome == Outcome::Invalid {
        return Some((
            ViolationKind::Protocol,
            "the copy was answered with an outcome outside the contract".into(),
        ));
    }
    if d.flags & Op::WRONG_ID != 0 {
        return Some((
            ViolationKind::Protocol,
            "the copy was answered with another request_id".into(),
        ));
    }
    let answered = |o: Outcome| o.took_sequence() || o == Outcome::NotApplied;
    if !answered(d.outcome) || !answered(op.outcome) {
        return None;
    }
    let (to_balance, to_sequence) = match find_leg(h, d.op as usize) {
        Some(l) => (l.to_balance, l.to_sequence),
        None => (0, 0),
    };
    let same = op.outcome == d.outcome
        && op.balance == d.balance
        && op.sequence == d.sequence
        && (to_balance, to_sequence) == (d.to_balance, d.to_sequence);
    let flags_known = !op.resolved && !op.has(Op::FROM_COPY);
    let first = !op.has(Op::REPLAYED);
    let copy_first = d.flags & Op::REPLAYED == 0;
    if !same {
        let both_applied = op.outcome.took_sequence() && d.outcome.took_sequence();
        if both_applied && op.sequence != d.sequence && (copy_first && (first || !flags_known)) {
            return Some((
                ViolationKind::DoubleApply,
                format!(
                    "both answers are first applications, at seq {} and at seq {} (double apply)",
                    op.sequence, d.sequence
                ),
            ));
        }
        return Some((
            ViolationKind::ReplayMismatch,
            format!("the answers differ: {} (replay mismatch)", differ(op, d)),
        ));
    }
    if !flags_known {
        return None;
    }
    match (first, copy_first) {
        (false, false) => Some((ViolationKind::Protocol, "both answers say replayed = true, so neither was the first application".into())),
        (true, true) => Some((ViolationKind::ReplayMismatch, "both answers say replayed = false: the server claims to have applied it twice (replay mismatch)".into())),
        (false, true) if !d.at_once => Some((ViolationKind::ReplayMismatch, "the copy, sent after the first answer, says replayed = false while the first answer says replayed = true (replay mismatch)".into())),
        _ => None,
    }
}

/// How two answers differ, in words.
fn differ(op: &Op, d: &Duplicate) -> String {
    format!(
        "first {} at seq {} with balance {}, then {} at seq {} with balance {}",
        describe::outcome(op.outcome),
        op.sequence,
        op.balance,
        describe::outcome(d.outcome),
        d.sequence,
        d.balance
    )
}
