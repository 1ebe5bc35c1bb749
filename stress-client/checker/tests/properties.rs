//! Property tests: histories recorded from a correct single-threaded ledger
//! always pass; changing one reported balance or sequence makes them fail;
//! and no input, however garbled, makes the checker panic.

use bank_checker::synth::{in_reply_order, Fate, Ledger, Spec};
use bank_checker::{
    check, AccountState, Duplicate, History, Kind, Op, Outcome, Processes, Read, TransferLeg,
};
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

/// Mostly known fates with the odd resolved, not-applied or unknown one.
fn rare_unknown_fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        200 => Just(Fate::Known),
        4 => Just(Fate::Resolved),
        2 => Just(Fate::NotApplied),
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
    (initial, specs, any::<bool>(), any::<u64>()).prop_map(|(initial, specs, reorder, seed)| {
        let mut ledger = Ledger::new(&initial);
        let mut rng = bank_checker::synth::SplitMix(seed);
        for s in &specs {
            ledger.apply(s);
            if rng.below(4) == 0 {
                ledger.duplicate_last(rng.below(2) == 0);
            }
            // Reads from several clients at once: each in flight up to
            // longer than an op, overlapping ops and each other.
            for _ in 0..rng.below(4) {
                let (a, lead, lag) = (rng.below(4) as u32, rng.below(600) as u32, rng.below(600) as u32);
                ledger.read(a, lead, lag);
            }
        }
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
        Just(Outcome::Unknown),
        Just(Outcome::Invalid)
    ]
}

fn garbage_op() -> impl Strategy<Value = Op> {
    let fields = (0..5u32, kind(), outcome(), any::<bool>(), extreme(), any::<u8>());
    let times = (extreme(), extreme(), extreme(), extreme());
    (fields, times).prop_map(|((account, kind, outcome, resolved, amount, flags), t)| Op {
        account: if account == 4 { u32::MAX } else { account },
        kind,
        outcome,
        resolved,
        flags,
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
    let reads = prop::collection::vec(garbage_read(), 0..10);
    let dups = prop::collection::vec(garbage_duplicate(), 0..10);
    (accounts, ops, legs, reads, dups).prop_map(|(accounts, ops, legs, reads, duplicates)| History {
        accounts: accounts
            .into_iter()
            .enumerate()
            .map(
                |(i, (initial_balance, final_balance, final_sequence))| AccountState {
                    account_id: format!("x{i}"),
                    initial_balance,
                    final_balance,
                    final_sequence,
                    final_not_found: i == 3,
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
        reads,
        duplicates,
        invalid: Vec::new(),
        // Nonsense processes too (unsorted, out of range, huge widening).
        processes: Processes {
            op_starts: vec![3, 1, u32::MAX, 0],
            read_starts: vec![2, u32::MAX, 0, 1],
            widened_ns: u64::MAX / 3,
        },
    })
}

fn garbage_read() -> impl Strategy<Value = Read> {
    (0..5u32, any::<bool>(), extreme(), extreme(), extreme(), extreme()).prop_map(
        |(account, not_found, s, r, balance, seq)| Read {
            account,
            not_found,
            send_ns: s,
            recv_ns: r,
            balance,
            sequence: seq % 8,
        },
    )
}

fn garbage_duplicate() -> impl Strategy<Value = Duplicate> {
    let head = (0..45u32, any::<bool>(), outcome(), any::<bool>(), any::<u8>());
    let tail = (extreme(), extreme(), extreme(), extreme(), extreme(), extreme());
    (head, tail).prop_map(|((op, at_once, outcome, aborted, flags), t)| Duplicate {
        op,
        at_once,
        outcome,
        aborted,
        flags,
        send_ns: t.0,
        recv_ns: t.1,
        balance: t.2,
        sequence: t.3 % 8,
        to_balance: t.4,
        to_sequence: t.5 % 8,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Unknown outcomes as rare as in a real run (and reads, duplicates,
    /// transfers): the exact search places them and the verdict is passed.
    #[test]
    fn correct_histories_pass(h in history(rare_unknown_fate().boxed())) {
        let report = check(&h);
        prop_assert!(report.passed, "{:#?} {:#?}", report.violations, report.undecided);
    }

    /// One op in five of unknown outcome, many interchangeable: a correct
    /// history is never failed. (The search may run out of tries and leave
    /// the verdict open; that must stay rare.)
    #[test]
    fn correct_histories_with_many_unknowns_never_fail(h in history(any_fate().boxed())) {
        let report = check(&h);
        prop_assert_eq!(report.total_violations, 0, "{:#?}", report.violations);
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

    /// Two reads of one account that saw different states, the newer one
    /// moved to be answered just before the older one was sent: a stale
    /// read, always (two reads going backwards), whatever else is found.
    #[test]
    fn two_reads_going_backwards_always_fail(
        h in history(known_fate().boxed()),
        pick in any::<prop::sample::Index>(),
    ) {
        let mut h = h;
        let mut pairs = Vec::new();
        for (i, x) in h.reads.iter().enumerate() {
            for (j, y) in h.reads.iter().enumerate() {
                if x.account == y.account && x.sequence > y.sequence && y.send_ns >= 2 {
                    pairs.push((i, j));
                }
            }
        }
        prop_assume!(!pairs.is_empty());
        let (newer, older) = pairs[pick.index(pairs.len())];
        let sent = h.reads[older].send_ns;
        (h.reads[newer].send_ns, h.reads[newer].recv_ns) = (sent - 2, sent - 1);
        let report = check(&h);
        prop_assert!(report.count(bank_checker::ViolationKind::StaleRead) >= 1, "{:#?}", report.violations);
    }

    #[test]
    fn garbage_never_panics(h in garbage_history()) {
        let report = bank_checker::check_with(&h, &bank_checker::Limits { search_steps: 100_000 });
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
        flags: 0,
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
        final_balance: Some(u64::MAX),
        final_sequence: Some(u64::MAX),
        ..AccountState::opened(format!("g{i}"), u64::MAX - i)
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
        ..History::default()
    }
}

#[test]
fn hand_made_garbage_is_reported_as_malformed() {
    let report = check(&hand_made_garbage());
    assert!(!report.passed);
    let malformed = report.count(bank_checker::ViolationKind::Malformed);
    let protocol = report.count(bank_checker::ViolationKind::Protocol);
    assert!(malformed >= 6 && protocol >= 1, "{report:#?}");
}
