//! Hand-built histories for the rules of issue 19: reads are nodes of the
//! one order (two reads going backwards, read skew across a transfer, a read
//! that rules out a placement), GetOperation's NOT_FOUND, ABORTED only where
//! the contract allows it, and gaps with more than one cause named as such.
//! Each planted fault must be named with its kind; the clean variant passes.

mod common;

use bank_checker::{check, Op, Verdict, ViolationKind as V};
use common::*;

/// Two deposits in flight from 10 to 200 ns; one reader sees both (seq 2),
/// then, in a later call, only the first (seq 1) unless `forward`.
fn two_reads(forward: bool, second_read_ns: (u64, u64)) -> Builder {
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110).times(10, 200);
    b.op(0, Deposit, Approved, 20, 2, 130).times(10, 200);
    b.read(0, 2, 130).read_times(20, 30);
    let (seq, balance) = if forward { (2, 130) } else { (1, 110) };
    b.read(0, seq, balance)
        .read_times(second_read_ns.0, second_read_ns.1);
    b.finals(0, 130, 2);
    b
}

#[test]
fn two_reads_going_backwards_are_stale() {
    let detail = found(&check(&two_reads(false, (40, 50)).build()), V::StaleRead);
    assert!(
        detail.contains("read #1 (GetBalance sent at 40 ns) saw seq 1 (balance 110), but read #0 (GetBalance answered at 30 ns, before it was sent) had already seen seq 2 (balance 130): two reads went backwards"),
        "{detail}"
    );
    passes(&two_reads(true, (40, 50)));
    // Overlapping reads may see the ops in either order.
    passes(&two_reads(false, (25, 50)));
}

/// A transfer of 30 from `a` to `b` in flight from 10 to 200 ns; a reader
/// sees its credit on `b`, then, in a later call, `a` before its debit
/// unless `debited`.
fn skew(debited: bool, second_read_ns: (u64, u64)) -> Builder {
    let mut b = Builder::new(&[100, 0]);
    b.transfer(0, 1, Approved, 30, (1, 70), (1, 30)).times(10, 200);
    b.read(1, 1, 30).read_times(20, 30);
    let (seq, balance) = if debited { (1, 70) } else { (0, 100) };
    b.read(0, seq, balance)
        .read_times(second_read_ns.0, second_read_ns.1);
    b.finals(0, 70, 1).finals(1, 30, 1);
    b
}

#[test]
fn read_skew_across_a_transfer_is_an_order_cycle() {
    let report = check(&skew(false, (40, 50)).build());
    let detail = found(&report, V::OrderCycle);
    assert_eq!(report.total_violations, 1, "{report:#?}");
    for words in [
        "read #0 of b (GetBalance sent at 20 ns, answered at 30 ns, saw seq 1, balance 30)",
        "read #1 of a (GetBalance sent at 40 ns, answered at 50 ns, saw seq 0, balance 100)",
        "op #0 (transfer of 30 from a to b)",
        "read skew",
    ] {
        assert!(detail.contains(words), "{words}: {detail}");
    }
    passes(&skew(true, (40, 50)));
    passes(&skew(false, (25, 50)));
}

/// A read saw seq 1 (balance 110); the only op that can have taken it is a
/// deposit of unknown outcome, sent at `sent_ns`.
fn read_of_an_unknown(sent_ns: u64) -> Builder {
    let mut b = Builder::new(&[100]);
    b.read(0, 1, 110).read_times(10, 20);
    b.unknown(0, Deposit, 10).times(sent_ns, u64::MAX);
    b.finals(0, 110, 1);
    b
}

#[test]
fn a_read_rules_out_placing_an_op_sent_after_it() {
    let report = check(&read_of_an_unknown(30).build());
    assert_eq!(report.verdict, Verdict::Failed, "{report:#?}");
    passes(&read_of_an_unknown(5));
}

#[test]
fn get_operation_not_found_for_an_opened_account_is_a_lost_ack() {
    let mut b = Builder::new(&[100]);
    b.unknown(0, Deposit, 5)
        .flags(Op::LOOKUP_NOT_FOUND)
        .finals(0, 100, 0);
    let detail = found(&check(&b.build()), V::LostAck);
    assert!(
        detail.contains("GetOperation about it answered NOT_FOUND"),
        "{detail}"
    );
    let mut b = Builder::new(&[100]);
    b.unknown(0, Deposit, 5).finals(0, 100, 0);
    passes(&b);
}

#[test]
fn aborted_is_a_protocol_violation_unless_a_withdrawal_waits() {
    // A copy of a deposit answered ABORTED: no deposit ever waits.
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110)
        .duplicate(true)
        .finals(0, 110, 1);
    abort_last_copy(&mut b);
    let detail = found(&check(&b.build()), V::Protocol);
    assert!(detail.contains("did not ask to wait"), "{detail}");
    // The same for a withdrawal that waits: allowed while it waited.
    let mut b = Builder::new(&[100]);
    b.op(0, Withdraw, Approved, 10, 1, 90)
        .flags(Op::WAITS)
        .duplicate(true)
        .finals(0, 90, 1);
    abort_last_copy(&mut b);
    passes(&b);
    // A copy sent after the withdrawal was answered: it no longer waited.
    let mut b = Builder::new(&[100]);
    b.op(0, Withdraw, Approved, 10, 1, 90)
        .flags(Op::WAITS)
        .duplicate(false)
        .finals(0, 90, 1);
    abort_last_copy(&mut b);
    let detail = found(&check(&b.build()), V::Protocol);
    assert!(detail.contains("no longer waiting for funds"), "{detail}");
    // The op's own call (or GetOperation about it) answered ABORTED.
    let mut b = Builder::new(&[100]);
    b.unknown(0, Deposit, 5).flags(Op::ABORTED).finals(0, 100, 0);
    let detail = found(&check(&b.build()), V::Protocol);
    assert!(detail.contains("answered ABORTED"), "{detail}");
    let mut b = Builder::new(&[100]);
    b.unknown(0, Withdraw, 5)
        .flags(Op::ABORTED | Op::WAITS)
        .finals(0, 100, 0);
    passes(&b);
}

fn abort_last_copy(b: &mut Builder) {
    let copy = b.last_duplicate();
    copy.aborted = true;
    copy.outcome = Unknown;
    (copy.flags, copy.balance, copy.sequence) = (0, 0, 0);
}

#[test]
fn a_skipped_number_a_retry_could_explain_is_named_as_ambiguous() {
    // Seq 2 is missing and the balance did not move across it: either the
    // server skipped it, or the retried withdrawal of 60 ran again, denied.
    let mut b = Builder::new(&[100]);
    b.op(0, Withdraw, Approved, 60, 1, 40).duplicate(false);
    b.op(0, Deposit, Approved, 5, 3, 45).finals(0, 45, 3);
    let report = check(&b.build());
    assert_eq!(report.count(V::DoubleApply), 0, "{report:#?}");
    let detail = found(&report, V::SequenceGap);
    assert!(
        detail.contains("either op #0 (withdrawal of 60) took effect a second time (a retried request id applied twice), or the server skipped that number (the balance stayed 40 across the gap) (ambiguous gap)"),
        "{detail}"
    );
}

#[test]
fn a_gap_a_false_not_applied_could_explain_is_named_as_ambiguous() {
    // Seq 2 (+10) is missing: either the retried deposit of 10 ran again, or
    // the other deposit of 10, answered NOT_APPLIED by GetOperation, did.
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110).duplicate(false);
    b.op(0, Deposit, NotApplied, 10, 0, 0).resolved();
    b.op(0, Deposit, Approved, 5, 3, 125).finals(0, 125, 3);
    let report = check(&b.build());
    assert_eq!(report.count(V::DoubleApply), 0, "{report:#?}");
    let detail = found(&report, V::UnexplainedChange);
    assert!(
        detail.contains("either op #0 (deposit of 10) took effect a second time (a retried request id applied twice), or op #1 (deposit of 10) took effect although it was answered NOT_APPLIED"),
        "{detail}"
    );
}

#[test]
fn a_gap_a_false_not_applied_explains_alone_names_that_op() {
    // Seq 2 (+10) is missing and no retry explains it; the deposit of 10
    // GetOperation called NOT_APPLIED would, had that answer been false.
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 5, 1, 105);
    b.op(0, Deposit, NotApplied, 10, 0, 0).resolved();
    b.op(0, Deposit, Approved, 5, 3, 120).finals(0, 120, 3);
    let detail = found(&check(&b.build()), V::UnexplainedChange);
    assert!(
        detail.contains("op #1 (deposit of 10) was answered NOT_APPLIED but would explain it"),
        "{detail}"
    );
}
