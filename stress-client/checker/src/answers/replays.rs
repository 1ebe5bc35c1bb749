//! Retries under load: an op sent twice under one request id must take
//! effect once. Both answers must carry the same outcome, balance and
//! sequence (`replay_mismatch`), exactly one with `replayed = false` (when
//! both went out at once either may be the first; a copy sent after the
//! first answer must be the replay); two first applications at different
//! sequence numbers are a `double_apply`. A copy answered ABORTED is fine
//! only where the contract allows it: the op is a withdrawal sent with
//! `wait_for_funds` and the copy was not sent after the original's own
//! answer (then the original was no longer waiting); else `protocol`. A copy
//! answered with another error says nothing.

use crate::history::leg::find_leg;
use crate::history::{Duplicate, History, Op, Outcome};
use crate::report::describe;
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
fn judge(h: &History, op: &Op, d: &Duplicate) -> Option<Finding> {
    if d.outcome == Outcome::Invalid {
        let why = "the copy was answered with an outcome outside the contract";
        return Some((ViolationKind::Protocol, why.into()));
    }
    if d.flags & Op::WRONG_ID != 0 {
        let why = "the copy was answered with another request_id";
        return Some((ViolationKind::Protocol, why.into()));
    }
    if d.aborted {
        return aborted(op, d);
    }
    let answered = |o: Outcome| o.took_sequence() || o == Outcome::NotApplied;
    if !answered(d.outcome) || !answered(op.outcome) {
        return None;
    }
    let (to_balance, to_sequence) =
        find_leg(h, d.op as usize).map_or((0, 0), |l| (l.to_balance, l.to_sequence));
    let same = op.outcome == d.outcome
        && (op.balance, op.sequence) == (d.balance, d.sequence)
        && (to_balance, to_sequence) == (d.to_balance, d.to_sequence);
    // The original's flag says nothing when its answer came from GetOperation
    // or from this very copy.
    let flags_known = !op.resolved && !op.has(Op::FROM_COPY);
    let first = !op.has(Op::REPLAYED);
    let copy_first = d.flags & Op::REPLAYED == 0;
    if !same {
        return Some(different(op, d, copy_first && (first || !flags_known)));
    }
    flags_known
        .then(|| judge_flags(first, copy_first, d.at_once))
        .flatten()
}

/// A copy answered ABORTED: allowed only while the request id belongs to a
/// withdrawal waiting for funds. Provable from the history: the op did not
/// ask to wait, or the copy was sent after the original's own answer had
/// arrived (the original had finished waiting by then).
fn aborted(op: &Op, d: &Duplicate) -> Option<Finding> {
    if !op.has(Op::WAITS) {
        let why = "the copy was answered ABORTED, which the contract allows only for the request id of a withdrawal still waiting for funds, and this op did not ask to wait (protocol)";
        return Some((ViolationKind::Protocol, why.into()));
    }
    let answered_first_hand = !op.resolved && !op.has(Op::FROM_COPY) && !op.outcome.is_open();
    if !d.at_once && answered_first_hand && d.send_ns > op.recv_ns {
        let why = format!(
            "the copy, sent at {} ns after the original's answer at {} ns, was answered ABORTED, but a withdrawal that has been answered is no longer waiting for funds (protocol)",
            d.send_ns, op.recv_ns
        );
        return Some((ViolationKind::Protocol, why));
    }
    None
}

/// A violation and its words.
type Finding = (ViolationKind, String);

/// Two answers that differ: a double apply when both claim to be first
/// applications at two sequence numbers, else a replay mismatch.
fn different(op: &Op, d: &Duplicate, both_first: bool) -> Finding {
    let both_applied = op.outcome.took_sequence() && d.outcome.took_sequence();
    if both_applied && op.sequence != d.sequence && both_first {
        let why = format!(
            "both answers are first applications, at seq {} and at seq {} (double apply)",
            op.sequence, d.sequence
        );
        return (ViolationKind::DoubleApply, why);
    }
    let why = format!("the answers differ: {} (replay mismatch)", differ(op, d));
    (ViolationKind::ReplayMismatch, why)
}

/// Two equal answers: exactly one says `replayed = false`, and a copy sent
/// after the first answer must be the replay.
fn judge_flags(first: bool, copy_first: bool, at_once: bool) -> Option<Finding> {
    let why = match (first, copy_first) {
        (false, false) => "both answers say replayed = true, so neither was the first application",
        (true, true) => "both answers say replayed = false: the server claims to have applied it twice (replay mismatch)",
        (false, true) if !at_once => "the copy, sent after the first answer, says replayed = false while the first answer says replayed = true (replay mismatch)",
        _ => return None,
    };
    let kind = if first || copy_first {
        ViolationKind::ReplayMismatch
    } else {
        ViolationKind::Protocol
    };
    Some((kind, why.into()))
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
