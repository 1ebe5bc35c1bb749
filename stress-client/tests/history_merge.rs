//! The merge of several processes' histories under clock skew: an order
//! between processes closer than `--max-clock-skew` is not used, a correct
//! history split over three processes passes whatever their clock errors
//! within the window, a planted real-time violation wider than the window is
//! caught, and so is one inside the window when both ops are of one process.

use std::time::Duration;

use bank_checker::{synth, AccountState, History, Kind, Op, Outcome, Verdict, ViolationKind};
use stress_client::history::merge::merge;
use stress_client::history::split::split;

#[path = "support/merged.rs"]
mod merged;

use merged::{file, merged};

#[test]
fn a_correct_history_over_three_processes_passes_for_any_skew_within_the_window() {
    let window = Duration::from_nanos(2_000);
    let w = window.as_nanos() as i64;
    let errors = [
        [0, 0, 0],
        [0, w, 0],
        [w / 2, -w / 2, 0],
        [-w / 2, w / 2, w / 2],
        [0, 0, -w],
    ];
    for seed in 0..6 {
        let h = synth::random_history(seed, 3_000, 4);
        for e in errors {
            let report = bank_checker::check(&merged(split(&h, 3), &e, window));
            assert_eq!(
                report.verdict,
                Verdict::Passed,
                "seed {seed} errors {e:?}: {:?}",
                report.violations
            );
        }
    }
}

/// Process 0's withdrawal took seq 2 and was answered; process 1's, with
/// seq 1, was sent `gap_ns` after that answer: a real-time violation.
fn planted(gap_ns: u64) -> Vec<History> {
    let account = AccountState {
        final_balance: Some(80),
        final_sequence: Some(2),
        ..AccountState::opened("acct-0".into(), 100)
    };
    let op = |send_ns, balance, sequence| Op {
        account: 0,
        kind: Kind::Withdraw,
        outcome: Outcome::Approved,
        resolved: false,
        flags: 0,
        amount: 10,
        send_ns,
        recv_ns: send_ns + 1_000,
        balance,
        sequence,
    };
    let one = |ops: Vec<Op>, a: &AccountState| History {
        accounts: vec![a.clone()],
        ops,
        ..History::default()
    };
    let bare = AccountState::opened("acct-0".into(), 100);
    vec![
        one(vec![op(5_000, 80, 2)], &account),
        one(vec![op(6_000 + gap_ns, 90, 1)], &bare),
    ]
}

#[test]
fn an_order_inside_the_window_is_dropped_and_one_beyond_it_is_caught() {
    let window = Duration::from_millis(10);
    let w = window.as_nanos() as u64;
    let inside = bank_checker::check(&merged(planted(w / 2), &[0, 0], window));
    assert_eq!(inside.verdict, Verdict::Passed, "{:?}", inside.violations);
    // One process's clock half a window fast still leaves it inside.
    let inside = bank_checker::check(&merged(planted(w / 2), &[0, w as i64 / 2], window));
    assert_eq!(inside.verdict, Verdict::Passed, "{:?}", inside.violations);
    for e in [[0, 0], [0, w as i64 / 2], [w as i64 / 2, 0]] {
        let beyond = bank_checker::check(&merged(planted(2 * w + 1), &e, window));
        assert_eq!(beyond.verdict, Verdict::Failed, "errors {e:?}");
        assert!(
            beyond
                .violations
                .iter()
                .any(|v| v.kind == ViolationKind::RealTimeOrder),
            "{:?}",
            beyond.violations
        );
    }
}

/// Both withdrawals of [`planted`] in process 0 (seq 2 answered, seq 1
/// sent `gap_ns` after that answer), process 1 with an unrelated deposit.
fn planted_in_one_process(gap_ns: u64) -> Vec<History> {
    let mut parts = planted(gap_ns);
    let late = parts[1].ops[0];
    parts[0].ops.push(late);
    let deposit = Op {
        account: 1,
        kind: Kind::Deposit,
        outcome: Outcome::Approved,
        balance: 60,
        sequence: 1,
        ..late
    };
    let other = AccountState {
        final_balance: Some(60),
        final_sequence: Some(1),
        ..AccountState::opened("acct-1".into(), 50)
    };
    parts[0].accounts.push(other.clone());
    parts[1] = History {
        accounts: vec![AccountState::opened("acct-1".into(), 50)],
        ops: vec![Op {
            account: 0,
            ..deposit
        }],
        ..History::default()
    };
    parts
}

#[test]
fn within_one_process_an_order_inside_the_window_is_kept() {
    let window = Duration::from_millis(10);
    let w = window.as_nanos() as u64;
    for gap in [1, w / 2, w - 1, 2 * w + 1] {
        for e in [[0, 0], [w as i64 / 2, 0], [0, -(w as i64) / 2]] {
            let report = bank_checker::check(&merged(planted_in_one_process(gap), &e, window));
            let kinds: Vec<_> = report.violations.iter().map(|v| v.kind).collect();
            assert!(
                kinds.contains(&ViolationKind::RealTimeOrder),
                "gap {gap} errors {e:?}: {:?} {:?}",
                report.verdict,
                report.violations
            );
        }
    }
    // The same two ops in time order pass.
    let mut fine = planted_in_one_process(w / 2);
    fine[0].ops.swap(0, 1);
    let (a, b) = (fine[0].ops[0].send_ns, fine[0].ops[1].send_ns);
    (fine[0].ops[0].send_ns, fine[0].ops[1].send_ns) = (a.min(b), a.max(b));
    fine[0].ops[0].recv_ns = fine[0].ops[0].send_ns + 1_000;
    fine[0].ops[1].recv_ns = fine[0].ops[1].send_ns + 1_000;
    let report = bank_checker::check(&merged(fine, &[0, 0], window));
    assert_eq!(report.verdict, Verdict::Passed, "{:?}", report.violations);
}

#[test]
fn accounts_that_disagree_on_their_opening_balance_do_not_merge() {
    let mut parts = planted(0);
    parts[1].accounts[0].initial_balance = 99;
    let files = parts
        .into_iter()
        .enumerate()
        .map(|(p, h)| file(p as u32, h, 0, 0, 0))
        .collect();
    let err = merge(files, Duration::from_millis(10)).unwrap_err();
    assert!(err.contains("acct-0") && err.contains("99"), "{err}");
}
