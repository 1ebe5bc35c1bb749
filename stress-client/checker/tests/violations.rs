//! Hand-built histories: a correct one passes, and each kind of violation is
//! caught with a detail a person can follow.

mod common;

use bank_checker::{check, Report, Verdict, ViolationKind as V, MAX_REPORTED_VIOLATIONS};
use common::*;

/// Asserts that `kind` was found exactly `n` times and returns its first detail.
fn found(report: &Report, kind: V, n: u64) -> String {
    assert_eq!(report.count(kind), n, "{kind} count in {report:#?}");
    assert!(!report.passed);
    let v = report.violations.iter().find(|v| v.kind == kind);
    v.map(|v| v.detail.clone()).unwrap_or_default()
}

#[test]
fn correct_history_with_transfers_denials_and_unknowns_passes() {
    let mut b = Builder::new(&[100, 50, 0]);
    b.op(0, Deposit, Approved, 20, 1, 120)
        .op(0, Withdraw, Approved, 30, 2, 90)
        .transfer(0, 1, Approved, 40, (3, 50), (1, 90))
        .op(1, Withdraw, InsufficientFunds, 200, 2, 90)
        .transfer(1, 2, InsufficientFunds, 500, (3, 90), (1, 0))
        .op(2, Deposit, Approved, 10, 2, 10)
        .resolved()
        .unknown(0, Withdraw, 5) // took effect as seq 4 of `a`: 50 -> 45
        .unknown(1, Deposit, 7) // never took effect
        .op(0, Deposit, Approved, 5, 5, 50)
        .unknown_transfer(2, 0, 3)
        .op(1, Withdraw, NotApplied, 1, 0, 0)
        .finals(0, 50, 5)
        .finals(1, 90, 3)
        .finals(2, 10, 2);
    let report = check(&b.build());
    assert!(report.passed, "{report:#?}");
    assert_eq!(report.total_violations, 0);
    let s = &report.stats;
    assert_eq!((s.ops, s.applied_ops, s.unknown_ops), (11, 7, 3));
    assert_eq!((s.resolved_ops, s.not_applied_ops, s.transfers), (1, 1, 3));
    assert_eq!(s.unknown_sequence_slots, 1);
    assert_eq!(s.sequence_numbers_checked, 9);
    assert!(s.conservation_checked);
}

#[test]
fn lost_update_names_the_overwritten_op() {
    let mut b = Builder::new(&[100]);
    b.op(0, Withdraw, Approved, 70, 1, 30)
        .op(0, Withdraw, Approved, 80, 2, 20)
        .finals(0, 20, 2);
    let report = check(&b.build());
    let detail = found(&report, V::LostUpdate, 1);
    assert_eq!(
        detail,
        "withdrawal of 80 at seq 2 reported balance 20, but replaying seq 1..2 from the initial \
         balance 100 gives -50: it acted on the initial balance 100, so seq 1 (withdrawal of 70) \
         was lost (lost update)"
    );
    assert_eq!(report.count(V::Overdraft), 0);
    assert_eq!(report.count(V::Conservation), 1);
}

#[test]
fn lost_update_mid_history_is_one_violation_not_a_cascade() {
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110)
        .op(0, Withdraw, Approved, 20, 2, 90)
        .op(0, Withdraw, Approved, 30, 3, 80)
        .op(0, Deposit, Approved, 1, 4, 81)
        .op(0, Withdraw, Approved, 1, 5, 80)
        .finals(0, 80, 5);
    let report = check(&b.build());
    let detail = found(&report, V::LostUpdate, 1);
    assert!(
        detail.contains("acted on the balance 110 left by seq 1, so seq 2 (withdrawal of 20) was lost"),
        "{detail}"
    );
    assert_eq!(
        report.total_violations, 2,
        "lost update + conservation: {report:#?}"
    );
}

#[test]
fn overdraft_is_detected() {
    let mut b = Builder::new(&[50]);
    b.op(0, Withdraw, Approved, 80, 1, 0).finals(0, 0, 1);
    let report = check(&b.build());
    let detail = found(&report, V::Overdraft, 1);
    assert!(detail.contains("the balance before it was only 50"), "{detail}");
}

#[test]
fn overdraft_by_transfer_is_detected() {
    let mut b = Builder::new(&[50, 0]);
    b.transfer(0, 1, Approved, 80, (1, 0), (1, 80))
        .finals(0, 0, 1)
        .finals(1, 80, 1);
    let report = check(&b.build());
    let detail = found(&report, V::Overdraft, 1);
    assert!(detail.starts_with("transfer of 80 to b at seq 1"), "{detail}");
}

#[test]
fn unjustified_denial_is_detected() {
    let mut b = Builder::new(&[100]);
    b.op(0, Withdraw, InsufficientFunds, 30, 1, 100).finals(0, 100, 1);
    let report = check(&b.build());
    let detail = found(&report, V::UnjustifiedDenial, 1);
    assert_eq!(report.total_violations, 1);
    assert!(detail.contains("the balance before it was 100"), "{detail}");
}

#[test]
fn denial_that_changes_the_balance_is_detected() {
    let mut b = Builder::new(&[10]);
    b.op(0, Withdraw, InsufficientFunds, 30, 1, 5).finals(0, 5, 1);
    found(&check(&b.build()), V::LostUpdate, 1);
}

#[test]
fn sequence_gap_without_unknown_ops_is_detected() {
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110)
        .op(0, Deposit, Approved, 10, 3, 120)
        .finals(0, 120, 3);
    let report = check(&b.build());
    let detail = found(&report, V::SequenceGap, 1);
    assert_eq!(report.total_violations, 1);
    assert!(
        detail.starts_with("seq 2 (before deposit of 10 at seq 3) is missing: no recorded op took them"),
        "{detail}"
    );
}

#[test]
fn gap_larger_than_the_unknown_ops_is_detected() {
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110)
        .unknown(0, Deposit, 5)
        .op(0, Deposit, Approved, 10, 4, 125)
        .finals(0, 125, 4);
    let report = check(&b.build());
    let detail = found(&report, V::UnexplainedChange, 1);
    assert!(
        detail.contains("from 110 to 115 across them, a change that no placement of the 1 op(s)"),
        "{detail}"
    );
}

#[test]
fn gap_whose_balance_jump_the_unknown_ops_cannot_explain_is_detected() {
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110)
        .unknown(0, Deposit, 5)
        .op(0, Deposit, Approved, 10, 3, 620)
        .finals(0, 620, 3);
    let report = check(&b.build());
    let detail = found(&report, V::UnexplainedChange, 1);
    assert!(detail.contains("went from 110 to 610"), "{detail}");
}

#[test]
fn gap_explained_by_an_unknown_op_passes() {
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110)
        .unknown(0, Withdraw, 50)
        .op(0, Deposit, Approved, 10, 3, 70)
        .finals(0, 70, 3);
    let report = check(&b.build());
    assert!(report.passed, "{report:#?}");
    assert_eq!(report.stats.unknown_sequence_slots, 1);
}

#[test]
fn one_unknown_op_cannot_fill_two_gaps() {
    let mut b = Builder::new(&[100]);
    b.unknown(0, Deposit, 5)
        .op(0, Deposit, Approved, 10, 2, 115)
        .op(0, Deposit, Approved, 10, 4, 130)
        .finals(0, 130, 4);
    let detail = found(&check(&b.build()), V::UnexplainedChange, 1);
    assert!(detail.contains("no placement fills them all at once"), "{detail}");
}

#[test]
fn duplicate_sequence_is_detected() {
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110)
        .op(0, Deposit, Approved, 5, 1, 115)
        .finals(0, 110, 1);
    let detail = found(&check(&b.build()), V::DuplicateSequence, 1);
    assert!(detail.contains("both took seq 1"), "{detail}");
}

#[test]
fn real_time_reordering_is_detected() {
    let mut b = Builder::new(&[0]);
    b.op(0, Deposit, Approved, 5, 1, 5)
        .times(20, 30)
        .op(0, Deposit, Approved, 7, 2, 12)
        .times(0, 10)
        .finals(0, 12, 2);
    let report = check(&b.build());
    let detail = found(&report, V::RealTimeOrder, 1);
    assert_eq!(report.total_violations, 1);
    assert_eq!(
        detail,
        "deposit of 7 at seq 2 got its reply at 10 ns, before deposit of 5 at seq 1 was sent at \
         20 ns, yet it took the later sequence number (real-time order)"
    );
}

#[test]
fn overlapping_ops_may_take_either_order() {
    let mut b = Builder::new(&[0]);
    b.op(0, Deposit, Approved, 5, 1, 5)
        .times(5, 30)
        .op(0, Deposit, Approved, 7, 2, 12)
        .times(0, 10)
        .finals(0, 12, 2);
    assert!(check(&b.build()).passed);
}

#[test]
fn ops_without_reply_never_precede_anything() {
    let mut b = Builder::new(&[0]);
    b.op(0, Deposit, Approved, 5, 2, 12)
        .times(0, u64::MAX)
        .op(0, Deposit, Approved, 7, 1, 7)
        .times(20, 30)
        .finals(0, 12, 2);
    assert!(check(&b.build()).passed);
}

#[test]
fn bad_final_balance_is_detected() {
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110).finals(0, 999, 1);
    let detail = found(&check(&b.build()), V::FinalBalance, 1);
    assert!(detail.contains("is 999, but it should be 110"), "{detail}");
}

#[test]
fn final_sequence_below_an_acknowledged_one_is_a_lost_ack() {
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110).finals(0, 110, 0);
    let detail = found(&check(&b.build()), V::LostAck, 1);
    assert!(detail.contains("moved backwards"), "{detail}");
}

#[test]
fn final_sequence_past_every_op_is_a_gap() {
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110).finals(0, 110, 5);
    let detail = found(&check(&b.build()), V::SequenceGap, 1);
    assert!(detail.contains("seq 2..5 (before the final read)"), "{detail}");
    b.finals(0, 150, 5);
    found(&check(&b.build()), V::UnexplainedChange, 1);
}

#[test]
fn trailing_unknown_op_explains_the_final_state() {
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110)
        .unknown(0, Withdraw, 5)
        .finals(0, 105, 2);
    assert!(check(&b.build()).passed);
}

#[test]
fn unknown_op_with_no_final_state_is_inconclusive() {
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110).unknown(0, Withdraw, 5);
    let report = check(&b.build());
    assert_eq!(report.verdict, Verdict::Inconclusive);
    assert_eq!(report.total_violations, 0);
    assert!(!report.passed && !report.stats.conservation_checked);
    assert!(report.undecided[0].contains("could not be read"), "{report:#?}");
}

#[test]
fn missing_final_state_is_inconclusive_not_passed() {
    let mut b = Builder::new(&[100]);
    b.op(0, Deposit, Approved, 10, 1, 110);
    let report = check(&b.build());
    assert_eq!(report.verdict, Verdict::Inconclusive);
    assert_eq!(report.stats.accounts_without_final_state, 1);
}

#[test]
fn half_applied_unknown_transfer_breaks_conservation() {
    let mut b = Builder::new(&[100, 0]);
    b.op(0, Deposit, Approved, 10, 1, 110)
        .unknown_transfer(0, 1, 50)
        .op(0, Deposit, Approved, 10, 3, 70)
        .finals(0, 70, 3)
        .finals(1, 0, 0);
    let report = check(&b.build());
    let detail = found(&report, V::Conservation, 1);
    assert!(detail.contains("ended with 70 in total"), "{detail}");
    let detail = found(&report, V::UnexplainedChange, 1);
    assert!(detail.contains("no placement fills them all at once"), "{detail}");
}

#[test]
fn details_are_capped_but_all_violations_counted() {
    let mut b = Builder::new(&[0]);
    for i in 0..1_000u64 {
        b.op(0, Deposit, Approved, 1, 2 * i + 1, i + 1);
    }
    b.finals(0, 1_000, 1_999);
    let report = check(&b.build());
    assert_eq!(report.violations.len(), MAX_REPORTED_VIOLATIONS);
    assert_eq!(report.count(V::SequenceGap), 999);
    assert_eq!(report.total_violations, 999);
}

#[test]
fn kinds_have_distinct_snake_case_names() {
    let names: Vec<&str> = V::ALL.iter().map(|k| k.as_str()).collect();
    assert!(names.contains(&"lost_update") && names.contains(&"real_time_order"));
    for name in &names {
        assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{name}");
    }
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len());
    assert_eq!(V::DuplicateSequence.to_string(), "duplicate_sequence");
}

#[test]
fn empty_history_passes() {
    assert!(check(&Default::default()).passed);
}
