//! Hand-built histories for the checks that judge a server as a whole: one
//! global order, exact placement of unknown outcomes, reads and retries
//! under load, answers the contract forbids, lost acknowledgements. Each
//! planted fault must be named with its kind; the clean variant must pass.

mod common;

use bank_checker::{check, Op, ViolationKind as V};
use common::*;

/// Two opposite transfers of a non-atomic server: each debited under one
/// lock and credited under the other, so each account saw them in the
/// opposite order. Every account replays fine.
fn crossed_transfers(crossed: bool) -> Builder {
    let mut b = Builder::new(&[100, 100]);
    let (t1_to, t2_from) = if crossed {
        ((2, 105), (1, 95))
    } else {
        ((1, 110), (2, 105))
    };
    b.transfer(0, 1, Approved, 10, (1, 90), t1_to).times(10, 100);
    b.transfer(1, 0, Approved, 5, t2_from, (2, 95)).times(10, 100);
    b.finals(0, 95, 2).finals(1, 105, 2);
    b
}

#[test]
fn opposite_transfers_in_two_critical_sections_are_an_order_cycle() {
    let report = check(&crossed_transfers(true).build());
    let detail = found(&report, V::OrderCycle);
    assert_eq!(report.total_violations, 1, "{report:#?}");
    assert!(
        detail.contains("op #0 (transfer of 10 from a to b) comes before op #1 (transfer of 5 from b to a) on a (seq 1 < 2) but after it on b (seq 2 > 1)"),
        "{detail}"
    );
    passes(&crossed_transfers(false));
}

#[test]
fn a_read_older_than_an_answered_op_is_stale() {
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110).times(10, 15);
    b.read(0, 0, 100).read_times(20, 25).finals(0, 110, 1);
    let detail = found(&check(&b.build()), V::StaleRead);
    assert!(
        detail.contains("saw seq 0 (balance 100), but seq 1 had already been answered"),
        "{detail}"
    );
    b.h.reads[0] = bank_checker::Read {
        sequence: 1,
        balance: 110,
        ..b.h.reads[0]
    };
    passes(&b);
}

#[test]
fn a_read_that_saw_an_op_sent_after_it_is_stale() {
    let mut b = Builder::new(&[100]);
    b.read(0, 1, 110).read_times(10, 20);
    b.op(0, Deposit, Approved, 10, 1, 110)
        .times(30, 40)
        .finals(0, 110, 1);
    let detail = found(&check(&b.build()), V::StaleRead);
    assert!(detail.contains("read from the future"), "{detail}");
    b.read_times(10, 35);
    passes(&b);
}

#[test]
fn a_read_of_a_state_that_never_was_is_impossible() {
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110)
        .read(0, 1, 999)
        .finals(0, 110, 1);
    let detail = found(&check(&b.build()), V::ImpossibleRead);
    assert!(
        detail.contains("saw balance 999 at seq 1, but the balance right after seq 1 was 110"),
        "{detail}"
    );
}

#[test]
fn vanished_accounts_and_state_are_lost_acknowledgements() {
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110)
        .read(0, 1, 110)
        .finals(0, 110, 1);
    b.h.reads[0].not_found = true;
    found(&check(&b.build()), V::LostAck);
    let mut b = Builder::new(&[100]);
    b.h.accounts[0].final_not_found = true;
    found(&check(&b.build()), V::LostAck);
    let mut b = Builder::new(&[100]);
    b.unknown(0, Deposit, 5).flags(Op::NOT_FOUND).finals(0, 100, 0);
    found(&check(&b.build()), V::LostAck);
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110)
        .read(0, 2, 120)
        .finals(0, 110, 1);
    let detail = found(&check(&b.build()), V::LostAck);
    assert!(detail.contains("moved backwards"), "{detail}");
}

#[test]
fn a_retry_applied_again_is_a_double_apply() {
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110).duplicate(false);
    b.op(0, Deposit, Approved, 5, 3, 125).finals(0, 125, 3);
    let report = check(&b.build());
    let detail = found(&report, V::DoubleApply);
    assert!(
        detail.contains("op #0 (deposit of 10) taking effect a second time"),
        "{detail}"
    );
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110).duplicate(true);
    b.op(0, Deposit, Approved, 5, 2, 115).finals(0, 115, 2);
    passes(&b);
}

#[test]
fn two_first_answers_at_two_sequence_numbers_are_a_double_apply() {
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110).duplicate(true);
    let copy = b.last_duplicate();
    (copy.flags, copy.sequence, copy.balance) = (0, 2, 120);
    b.finals(0, 120, 2);
    let detail = found(&check(&b.build()), V::DoubleApply);
    assert!(detail.contains("at seq 1 and at seq 2"), "{detail}");
}

#[test]
fn answers_for_one_request_id_must_agree() {
    let mut b = Builder::new(&[100]);
    b.op(0, Withdraw, Approved, 10, 1, 90)
        .duplicate(false)
        .finals(0, 90, 1);
    b.last_duplicate().balance = 80;
    let detail = found(&check(&b.build()), V::ReplayMismatch);
    assert!(detail.contains("the answers differ"), "{detail}");
    let mut b = Builder::new(&[100]);
    b.op(0, Withdraw, Approved, 10, 1, 90)
        .duplicate(false)
        .finals(0, 90, 1);
    b.last_duplicate().flags = 0;
    let detail = found(&check(&b.build()), V::ReplayMismatch);
    assert!(detail.contains("both answers say replayed = false"), "{detail}");
}

#[test]
fn answers_the_contract_forbids_are_protocol_violations() {
    type Plant = fn(&mut Builder);
    let cases: [(&str, Plant); 5] = [
        ("outside the contract", |b| {
            b.unknown(0, Deposit, 5).last_op().outcome = Invalid;
        }),
        ("request_id other than", |b| {
            b.op(0, Deposit, Approved, 5, 1, 105).flags(Op::WRONG_ID);
        }),
        ("sent once, yet its answer says replayed = true", |b| {
            b.op(0, Deposit, Approved, 5, 1, 105).flags(Op::REPLAYED);
        }),
        ("must say replayed = true, but it said false", |b| {
            b.op(0, Deposit, Approved, 5, 1, 105).resolved().last_op().flags = 0;
        }),
        ("both answers say replayed = true", |b| {
            b.op(0, Deposit, Approved, 5, 1, 105)
                .flags(Op::REPLAYED)
                .duplicate(true);
        }),
    ];
    for (words, plant) in cases {
        let mut b = Builder::new(&[100]);
        plant(&mut b);
        let applied = b.h.ops.iter().any(|o| o.outcome == Approved);
        b.finals(0, if applied { 105 } else { 100 }, u64::from(applied));
        let detail = found(&check(&b.build()), V::Protocol);
        assert!(detail.contains(words), "{words}: {detail}");
    }
}

#[test]
fn an_unknown_transfer_is_placed_on_both_accounts_or_neither() {
    let mut b = Builder::new(&[100, 0]);
    b.unknown_transfer(0, 1, 30);
    b.op(0, Deposit, Approved, 1, 2, 71)
        .op(1, Deposit, Approved, 1, 2, 31);
    b.finals(0, 71, 2).finals(1, 31, 2);
    let report = passes(&b);
    assert_eq!(
        (report.checked.unknown_applied, report.checked.unknown_not_applied),
        (1, 0)
    );
    // One leg only: the target never saw it.
    let mut b = Builder::new(&[100, 0]);
    b.unknown_transfer(0, 1, 30);
    b.op(0, Deposit, Approved, 1, 2, 71)
        .op(1, Deposit, Approved, 1, 1, 1);
    b.finals(0, 71, 2).finals(1, 1, 1);
    let report = check(&b.build());
    found(&report, V::UnexplainedChange);
    found(&report, V::Conservation);
}

#[test]
fn an_unknown_op_takes_effect_no_earlier_than_it_was_sent() {
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 2, 60).times(10, 20);
    b.unknown(0, Withdraw, 50).times(30, u64::MAX);
    b.finals(0, 60, 2);
    let detail = found(&check(&b.build()), V::UnexplainedChange);
    assert!(
        detail.contains("seq 1 (before deposit of 10 at seq 2) is missing"),
        "{detail}"
    );
    b.h.ops[1].send_ns = 5;
    passes(&b);
}

#[test]
fn an_unknown_op_is_denied_only_where_the_balance_was_short() {
    let mut b = Builder::new(&[100]);
    b.unknown(0, Withdraw, 500)
        .op(0, Deposit, Approved, 10, 2, 110)
        .finals(0, 110, 2);
    passes(&b);
    let mut b = Builder::new(&[100]);
    b.unknown(0, Withdraw, 50)
        .op(0, Deposit, Approved, 10, 2, 110)
        .finals(0, 110, 2);
    found(&check(&b.build()), V::SequenceGap);
    let mut b = Builder::new(&[100]);
    b.unknown(0, Deposit, 50)
        .op(0, Deposit, Approved, 10, 2, 110)
        .finals(0, 110, 2);
    found(&check(&b.build()), V::SequenceGap);
}

#[test]
fn a_failed_call_that_changed_the_balance_otherwise_is_unexplained() {
    let mut b = Builder::new(&[100]);
    b.op(0, Withdraw, Approved, 10, 1, 95).resolved().finals(0, 95, 1);
    let detail = found(&check(&b.build()), V::UnexplainedChange);
    assert!(
        detail.contains("the failed call changed the balance by something else"),
        "{detail}"
    );
}

#[test]
fn the_verdict_says_what_it_checked() {
    let mut b = Builder::new(&[100, 0]);
    b.op(0, Deposit, Approved, 10, 1, 110)
        .duplicate(true)
        .read(0, 1, 110);
    b.unknown(0, Withdraw, 5).unknown_transfer(0, 1, 7);
    b.finals(0, 105, 2).finals(1, 0, 0);
    let report = passes(&b);
    let c = &report.checked;
    assert_eq!((c.ops, c.reads, c.duplicates, c.transfers), (3, 1, 1, 1));
    assert_eq!((c.unknown_applied, c.unknown_not_applied), (1, 1));
}
