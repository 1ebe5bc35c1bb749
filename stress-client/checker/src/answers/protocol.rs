//! Answers the contract forbids, op by op: an outcome outside the three, a
//! request id that is not the one sent, `replayed = true` on an op sent once,
//! `replayed = false` on a GetOperation answer for an applied op, a
//! not-applied answer with a balance or sequence, ABORTED for an op that is
//! not a withdrawal waiting for funds (the only request ids the contract
//! lets the server answer ABORTED, on the call or on GetOperation); and
//! NOT_FOUND for an account whose opening was acknowledged, on the op's own
//! call or on the GetOperation that asked about it (`lost_ack`). Never
//! folded into "unknown": counted and shown.

use crate::history::{History, Op, Outcome};
use crate::report::describe;
use crate::report::{Sink, ViolationKind};

/// Checks every op's answer against the contract.
pub(crate) fn check(h: &History, sink: &mut Sink) {
    let mut sent_twice: Vec<u32> = h.duplicates.iter().map(|d| d.op).collect();
    sent_twice.sort_unstable();
    for (i, op) in h.ops.iter().enumerate() {
        let twice = sent_twice.binary_search(&(i as u32)).is_ok();
        if let Some(problem) = problem(op, twice) {
            let kind = if op.has(Op::NOT_FOUND) || op.has(Op::LOOKUP_NOT_FOUND) {
                ViolationKind::LostAck
            } else {
                ViolationKind::Protocol
            };
            let id = describe::account(h, op.account as usize);
            sink.report(kind, &id, || {
                format!("{} {problem}", describe::op_by_index(h, i as u32))
            });
        }
    }
}

/// What is wrong with one op's answer, if anything.
fn problem(op: &Op, sent_twice: bool) -> Option<&'static str> {
    if op.has(Op::NOT_FOUND) {
        return Some(
            "failed with NOT_FOUND, but the account's opening had been acknowledged (lost acknowledgement)",
        );
    }
    if op.has(Op::LOOKUP_NOT_FOUND) {
        return Some("failed, and GetOperation about it answered NOT_FOUND, which the contract keeps for unknown accounts, but the account's opening had been acknowledged (lost acknowledgement)");
    }
    if op.has(Op::ABORTED) && !op.has(Op::WAITS) {
        return Some("was answered ABORTED (on its call or on GetOperation), which the contract allows only for the request id of a withdrawal still waiting for funds, and this op did not ask to wait");
    }
    if op.outcome == Outcome::Invalid {
        return Some("was answered with an outcome outside the contract (not APPROVED, INSUFFICIENT_FUNDS or NOT_APPLIED)");
    }
    if op.has(Op::WRONG_ID) {
        return Some("was answered with a request_id other than the one it carried");
    }
    let first_hand = !op.resolved && !op.has(Op::FROM_COPY);
    if first_hand && !sent_twice && op.has(Op::REPLAYED) {
        return Some("was sent once, yet its answer says replayed = true");
    }
    if op.resolved && op.outcome.took_sequence() && !op.has(Op::REPLAYED) {
        return Some("was found applied by GetOperation, whose answer for a known id must say replayed = true, but it said false");
    }
    if op.outcome == Outcome::NotApplied && (op.balance != 0 || op.sequence != 0) {
        return Some("was answered NOT_APPLIED with a balance or sequence, which must then be 0");
    }
    None
}
