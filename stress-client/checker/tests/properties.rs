//! Property tests: histories recorded from a correct single-threaded ledger
//! always pass; changing one reported balance or sequence makes them fail;
//! and no input, however garbled, makes the checker panic.

use bank_checker::synth::{in_reply_order, Fate, Ledger, Spec};
use bank_checker::{check, AccountState, History, Kind, Op, Outcome, TransferLeg};
use proptest::prelude::*;

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Deposit), Just(Kind::Withdraw), Just(Kind::Transfer)]
}

/// Every fate, unknown ones included.
fn any_fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        6 => Just(Fate::Known),
        1 => Just(Fate::Resolved),
        1 => Just(Fate::NotApplied),
        1 => Just(Fate::UnknownApplied),
        1 => Just(Fate::UnknownNotApplied),
    ]
}

/// Only fates the client fully knows, so every mutation must be caught.
fn known_fate() -> impl Strategy<Value = Fate> {
    prop_oneof![4 => Just(Fate::Known), 1 => Just(Fate::Resolved), 1 => Just(Fate::NotApplied)]
}

fn spec(fate: BoxedStrategy<Fate>) -> impl Strategy<Value = Spec> {
    (kind(), 0..4u32, 0..4u32, 1..150u64, fate, 0..400u32, 0..400u32).prop_map(
        |(kind, account, to, amount, fate, send_lead, recv_lag)| Spec {
            kind,
            account,
            to,
            amount,
            fate,
            send_lead,
            recv_lag,
        },
    )
}

/// A correct history over 1..=4 accounts, in run order or reply order.
fn history(fate: BoxedStrategy<Fate>) -> impl Strategy<Value = History> {
    let initial = prop::collection::vec(0..300u64, 1..=4);
    let specs = prop::collection::vec(spec(fate), 0..120);
    (initial, specs, any::<bool>()).prop_map(|(initial, specs, reorder)| {
        let mut ledger = Ledger::new(&initial);
        specs.iter().for_each(|s| ledger.apply(s));
        let h = ledger.finish();
        if reorder {
            in_reply_order(h)
        } else {
            h
        }
    })
}

/// The (balance, sequence) fields of every view that took a sequence number.
fn views(h: &mut History) -> Vec<(&mut u64, &mut u64)> {
    let applied: Vec<bool> = h.ops.iter().map(|o| o.outcome.took_sequence()).collect();
    let legs = h.transfers.iter_mut().filter(|l| applied[l.op as usize]);
    let legs = legs.map(|l| (&mut l.to_balance, &mut l.to_sequence));
    let ops = h.ops.iter_mut().filter(|o| o.outcome.took_sequence());
    ops.map(|o| (&mut o.balance, &mut o.sequence))
        .chain(legs)
        .collect()
}

fn extreme() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..8u64,
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(1 << 32),
        any::<u64>()
    ]
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Approved),
        Just(Outcome::InsufficientFunds),
        Just(Outcome::NotApplied),
        Just(Outcome::Unknown)
    ]
}

fn garbage_op() -> impl Strategy<Value = Op> {
    let fields = (0..5u32, kind(), outcome(), any::<bool>(), extreme());
    let times = (extreme(), extreme(), extreme(), extreme());
    (fields, times).prop_map(|((account, kind, outcome, resolved, amount), t)| Op {
        account: if account == 4 { u32::MAX } else { account },
        kind,
        outcome,
        resolved,
        amount,
        send_ns: t.0,
        recv_ns: t.1,
        balance: t.2,
        sequence: t.3 % 6 + if t.3 % 7 == 0 { u64::MAX - 6 } else { 0 },
    })
}

fn garbage_history() -> impl Strategy<Value = History> {
    let state = (
        extreme(),
        prop::option::of(extreme()),
        prop::option::of(extreme()),
    );
    let accounts = prop::collection::vec(state, 0..4);
    let ops = prop::collection::vec(garbage_op(), 0..40);
    let leg = (0..45u32, 0..5u32, extreme(), extreme());
    let legs = prop::collection::vec(leg, 0..20);
    (accounts, ops, legs).prop_map(|(accounts, ops, legs)| History {
        accounts: accounts
            .into_iter()
            .enumerate()
            .map(
                |(i, (initial_balance, final_balance, final_sequence))| AccountState {
                    account_id: format!("x{i}"),
                    initial_balance,
                    final_balance,
                    final_sequence,
                },
            )
            .collect(),
        ops,
        transfers: legs
            .into_iter()
            .map(|(op, to_account, to_balance, to_sequence)| TransferLeg {
                op,
                to_account,
                to_balance,
                to_sequence: to_sequence % 5,
            })
            .collect(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn correct_histories_pass(h in history(any_fate().boxed())) {
        let report = check(&h);
        prop_assert!(report.passed, "{:#?}", report.violations);
    }

    /// Changing one reported balance (field 0) or sequence (field 1) of a
    /// correct history must always be caught.
    #[test]
    fn one_changed_balance_or_sequence_fails(
        h in history(known_fate().boxed()),
        pick in any::<prop::sample::Index>(),
        delta in 1..u64::MAX,
        field in 0..2usize,
    ) {
        let mut h = h;
        let mut fields = views(&mut h);
        prop_assume!(!fields.is_empty());
        let i = pick.index(fields.len());
        let target = if field == 0 { &mut *fields[i].0 } else { &mut *fields[i].1 };
        *target = target.wrapping_add(delta);
        prop_assert!(!check(&h).passed);
    }

    #[test]
    fn garbage_never_panics(h in garbage_history()) {
        let report = check(&h);
        prop_assert!(report.violations.len() as u64 <= report.total_violations);
        prop_assert_eq!(report.passed, report.total_violations == 0);
    }
}

#[test]
fn bench_style_history_passes() {
    let h = bank_checker::synth::random_history(0x5eed, 50_000, 8);
    let report = check(&h);
    assert!(report.passed, "{:#?}", report.violations);
    assert!(
        report.stats.unknown_sequence_slots > 0,
        "some unknown ops took effect"
    );
    assert!(report.stats.denied_ops > 0 && report.stats.resolved_ops > 0);
}

/// An op with its reply before its send and an impossible balance.
fn bad_op(account: u32, kind: Kind, outcome: Outcome, amount: u64, sequence: u64) -> Op {
    Op {
        account,
        kind,
        outcome,
        resolved: false,
        amount,
        send_ns: 10,
        recv_ns: 5,
        balance: u64::MAX,
        sequence,
    }
}

/// Out-of-range accounts, sequence 0 and `u64::MAX`, a denied deposit,
/// overflowing amounts, and transfer legs that point nowhere or at themselves.
fn hand_made_garbage() -> History {
    let state = |i: u64| AccountState {
        account_id: format!("g{i}"),
        initial_balance: u64::MAX - i,
        final_balance: Some(u64::MAX),
        final_sequence: Some(u64::MAX),
    };
    let leg = |op, to_account, to_sequence| TransferLeg {
        op,
        to_account,
        to_balance: 0,
        to_sequence,
    };
    let (dep, tr) = (Kind::Deposit, Kind::Transfer);
    History {
        accounts: vec![state(0), state(1)],
        ops: vec![
            bad_op(7, dep, Outcome::Approved, u64::MAX, 1),
            bad_op(0, dep, Outcome::Approved, u64::MAX, u64::MAX),
            bad_op(0, dep, Outcome::Approved, u64::MAX, 1),
            bad_op(1, dep, Outcome::InsufficientFunds, 1, 1),
            bad_op(1, tr, Outcome::Approved, u64::MAX, 0),
            bad_op(0, tr, Outcome::Approved, u64::MAX, 2),
            bad_op(u32::MAX, Kind::Withdraw, Outcome::Unknown, u64::MAX, 0),
        ],
        transfers: vec![leg(5, 0, u64::MAX), leg(4, 9, 1), leg(99, 1, 1)],
    }
}

#[test]
fn hand_made_garbage_is_reported_as_malformed() {
    let report = check(&hand_made_garbage());
    assert!(!report.passed);
    let malformed = report.count(bank_checker::ViolationKind::Malformed);
    assert!(malformed >= 8, "{report:#?}");
}
