//! Property test of the ledger under concurrency: threads run random ops (some
//! with repeated request ids) on a few accounts; afterwards each account's
//! history, sorted by sequence number, must replay exactly on a sequential model.

use std::collections::HashMap;
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use bank_server::backend::ledger::{
    CallContext, Deposit, Ledger, LedgerConfig, LedgerError, LedgerResult, OpResult, Outcome, Transfer,
    Withdrawal,
};
use proptest::prelude::*;

const ACCOUNTS: [&str; 3] = ["a", "b", "c"];

/// One random op; `rid` picks from a small pool so that ids repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Deposit { acct: usize, amount: u64 },
    Withdraw { acct: usize, amount: u64 },
    Transfer { from: usize, to: usize, amount: u64 },
}

#[derive(Debug, Clone, Copy)]
struct Call {
    op: Op,
    rid: Option<u8>,
}

impl Op {
    /// The account whose request log (and `sequence`) the op uses.
    fn source(self) -> usize {
        match self {
            Op::Deposit { acct, .. } | Op::Withdraw { acct, .. } => acct,
            Op::Transfer { from, .. } => from,
        }
    }
}

fn call_strategy() -> impl Strategy<Value = Call> {
    let amount = 1u64..60;
    let op = prop_oneof![
        (0..ACCOUNTS.len(), amount.clone()).prop_map(|(acct, amount)| Op::Deposit { acct, amount }),
        (0..ACCOUNTS.len(), amount.clone()).prop_map(|(acct, amount)| Op::Withdraw { acct, amount }),
        (0..ACCOUNTS.len(), 1..ACCOUNTS.len(), amount).prop_map(|(from, offset, amount)| {
            let to = (from + offset) % ACCOUNTS.len();
            Op::Transfer { from, to, amount }
        }),
    ];
    (op, proptest::option::weighted(0.4, 0u8..6)).prop_map(|(op, rid)| Call { op, rid })
}

fn run(l: &Ledger, call: Call) -> LedgerResult<OpResult> {
    let request_id = call.rid.map(|r| format!("r{r}")).unwrap_or_default();
    let mut ctx = CallContext::detached();
    let source = l.account(ACCOUNTS[call.op.source()])?;
    match call.op {
        Op::Deposit { acct, amount } => {
            let d = Deposit {
                account_id: ACCOUNTS[acct].into(),
                amount,
                request_id,
            };
            l.deposit(&source, &d, &ctx)
        }
        Op::Withdraw { acct, amount } => {
            let w = Withdrawal {
                account_id: ACCOUNTS[acct].into(),
                amount,
                request_id,
                wait_for_funds: false,
            };
            l.withdraw(&source, &w, &mut ctx)
        }
        Op::Transfer { from, to, amount } => {
            let t = Transfer {
                from_account_id: ACCOUNTS[from].into(),
                to_account_id: ACCOUNTS[to].into(),
                amount,
                request_id,
            };
            let target = l.account(ACCOUNTS[to])?;
            l.transfer(&source, &target, &t, &ctx)
        }
    }
}

/// What one op did to one account, as reported: the model must agree.
#[derive(Debug, Clone, Copy)]
enum Effect {
    Credit {
        amount: u64,
        balance: u64,
    },
    Debit {
        amount: u64,
        outcome: Outcome,
        balance: u64,
    },
    Incoming {
        amount: u64,
        approved: bool,
        balance: u64,
    },
}

/// Replays one account's effects in sequence order on a plain integer.
fn replay(initial: u64, mut effects: Vec<(u64, Effect)>) -> Result<(u64, u64), TestCaseError> {
    effects.sort_by_key(|(seq, _)| *seq);
    let mut balance = i128::from(initial);
    for (i, (seq, effect)) in effects.iter().enumerate() {
        prop_assert_eq!(*seq, i as u64 + 1, "sequence numbers have a gap or a duplicate");
        let reported = match *effect {
            Effect::Credit { amount, balance: b } => {
                balance += i128::from(amount);
                b
            }
            Effect::Debit {
                amount,
                outcome,
                balance: b,
            } => {
                let expected = if balance >= i128::from(amount) {
                    balance -= i128::from(amount);
                    Outcome::Approved
                } else {
                    Outcome::InsufficientFunds
                };
                prop_assert_eq!(outcome, expected, "seq {}: wrong outcome", seq);
                b
            }
            Effect::Incoming {
                amount,
                approved,
                balance: b,
            } => {
                if approved {
                    balance += i128::from(amount);
                }
                b
            }
        };
        prop_assert!(balance >= 0);
        prop_assert_eq!(i128::from(reported), balance, "seq {}: wrong balance", seq);
    }
    Ok((balance as u64, effects.len() as u64))
}

fn check(l: &Ledger, initial: &[u64], done: &[(Call, LedgerResult<OpResult>)]) -> Result<(), TestCaseError> {
    // The one op per (account, request id) that took effect, and what it answered.
    let mut originals: HashMap<(usize, u8), (Op, &OpResult)> = HashMap::new();
    let mut effects: Vec<Vec<(u64, Effect)>> = vec![Vec::new(); ACCOUNTS.len()];
    let mut expected_total = i128::from(initial.iter().sum::<u64>());
    for (call, result) in done {
        let Ok(r) = result else { continue };
        if r.replayed {
            continue;
        }
        prop_assert_ne!(r.outcome, Outcome::NotApplied, "nothing was abandoned");
        if let Some(rid) = call.rid {
            let first = originals.insert((call.op.source(), rid), (call.op, r));
            prop_assert!(first.is_none(), "request id applied twice: {:?}", call);
        }
        let approved = r.outcome == Outcome::Approved;
        match call.op {
            Op::Deposit { acct, amount } => {
                prop_assert!(approved);
                expected_total += i128::from(amount);
                effects[acct].push((
                    r.sequence,
                    Effect::Credit {
                        amount,
                        balance: r.balance,
                    },
                ));
            }
            Op::Withdraw { acct, amount } => {
                if approved {
                    expected_total -= i128::from(amount);
                }
                let debit = Effect::Debit {
                    amount,
                    outcome: r.outcome,
                    balance: r.balance,
                };
                effects[acct].push((r.sequence, debit));
            }
            Op::Transfer { from, to, amount } => {
                let debit = Effect::Debit {
                    amount,
                    outcome: r.outcome,
                    balance: r.balance,
                };
                effects[from].push((r.sequence, debit));
                let credit = Effect::Incoming {
                    amount,
                    approved,
                    balance: r.to_balance,
                };
                effects[to].push((r.to_sequence, credit));
            }
        }
    }
    // Every repeat either replays the original exactly or conflicts with it.
    for (call, result) in done {
        let original = call.rid.and_then(|rid| originals.get(&(call.op.source(), rid)));
        match result {
            Ok(r) if r.replayed => {
                let (op, first) = original.expect("a replay has an original");
                prop_assert_eq!(*op, call.op, "replayed with other parameters");
                prop_assert_eq!(
                    r,
                    &OpResult {
                        replayed: true,
                        ..(*first).clone()
                    }
                );
            }
            Ok(_) => {}
            Err(LedgerError::RequestIdConflict { .. }) => {
                let (op, _) = original.expect("a conflict has an original");
                prop_assert_ne!(*op, call.op, "same parameters must replay, not conflict");
            }
            Err(e) => prop_assert!(false, "unexpected error {:?} for {:?}", e, call),
        }
    }
    for (i, account_effects) in effects.into_iter().enumerate() {
        let (balance, sequence) = replay(initial[i], account_effects)?;
        let snap = l.account(ACCOUNTS[i]).unwrap().snapshot();
        prop_assert_eq!((snap.balance, snap.sequence), (balance, sequence));
    }
    prop_assert_eq!(
        l.total_balance() as i128,
        expected_total,
        "money was created or lost"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn concurrent_histories_replay_on_a_sequential_model(
        initial in proptest::collection::vec(0u64..150, ACCOUNTS.len()),
        threads in proptest::collection::vec(proptest::collection::vec(call_strategy(), 1..60), 2..5),
    ) {
        let l = Ledger::new(LedgerConfig {
            processing_delay: Duration::ZERO,
            ..LedgerConfig::default()
        });
        for (id, balance) in ACCOUNTS.iter().zip(&initial) {
            l.open(id, *balance).unwrap();
        }
        let start = Barrier::new(threads.len());
        let done: Vec<(Call, LedgerResult<OpResult>)> = thread::scope(|s| {
            let handles: Vec<_> = threads
                .iter()
                .map(|calls| {
                    let (l, start) = (&l, &start);
                    s.spawn(move || {
                        start.wait();
                        calls.iter().map(|&c| (c, run(l, c))).collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        check(&l, &initial, &done)?;
    }
}
