//! The bug zoo (`bank-server --inject-bug NAME`), shown at work: each bug
//! happens when it is injected, and never under any other setting (no bug, or
//! another bug). First on the ledger alone, then over gRPC, where the fast
//! paths, the per-account runner and WithdrawStream are in the way.

#[allow(dead_code, unused_imports)]
mod common;

use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use bank_server::backend::ledger::{
    CallContext, Deposit, InjectedBug, Ledger, LedgerConfig, LedgerError, OpResult, Outcome as LedgerOutcome,
    Transfer, Withdrawal, PARTIAL_APPLY_EVERY, PARTIAL_APPLY_MESSAGE, STALE_READ_LAG,
};
use bank_server::rpc::zoo::{BAD_OUTCOME_EVERY, BAD_OUTCOME_VALUE};
use common::*;
use futures::future::join_all;

/// No bug, then every bug: the settings each test runs under.
fn every_setting() -> impl Iterator<Item = InjectedBug> {
    std::iter::once(InjectedBug::None).chain(InjectedBug::ALL)
}

/// A ledger with `bug` planted, `delay` slept per op, accounts at their balances.
fn ledger(bug: InjectedBug, delay: Duration, accounts: &[(&str, u64)]) -> Ledger {
    let l = Ledger::new(LedgerConfig {
        processing_delay: delay,
        inject_bug: bug,
        ..LedgerConfig::default()
    });
    for (id, balance) in accounts {
        l.open(id, *balance).unwrap();
    }
    l
}

fn deposit_on(l: &Ledger, id: &str, amount: u64, rid: &str) -> Result<OpResult, LedgerError> {
    let d = Deposit {
        account_id: id.into(),
        amount,
        request_id: rid.into(),
    };
    l.deposit(&*l.account(id)?, &d, &CallContext::detached())
}

fn withdraw_on(l: &Ledger, id: &str, amount: u64, rid: &str) -> Result<OpResult, LedgerError> {
    let w = Withdrawal {
        account_id: id.into(),
        amount,
        request_id: rid.into(),
        wait_for_funds: false,
    };
    l.withdraw(&*l.account(id)?, &w, &mut CallContext::detached())
}

fn transfer_on(l: &Ledger, from: &str, to: &str, amount: u64, rid: &str) -> Result<OpResult, LedgerError> {
    let t = Transfer {
        from_account_id: from.into(),
        to_account_id: to.into(),
        amount,
        request_id: rid.into(),
    };
    let (from, to) = (l.account(from)?, l.account(to)?);
    l.transfer(&from, &to, &t, &CallContext::detached())
}

/// (balance, sequence) as held by the account itself (never a cached copy).
fn truth(l: &Ledger, id: &str) -> (u64, u64) {
    let s = l.account(id).unwrap().snapshot();
    (s.balance, s.sequence)
}

/// Runs two ops on two threads released together; their results.
fn at_once<A, B>(a: A, b: B) -> (OpResult, OpResult)
where
    A: FnOnce() -> Result<OpResult, LedgerError> + Send,
    B: FnOnce() -> Result<OpResult, LedgerError> + Send,
{
    let start = Barrier::new(2);
    thread::scope(|s| {
        let a = s.spawn(|| {
            start.wait();
            a().unwrap()
        });
        let b = s.spawn(|| {
            start.wait();
            b().unwrap()
        });
        (a.join().unwrap(), b.join().unwrap())
    })
}

/// The seed: 100 on the account, 70 and 80 withdrawn at once; how many approved.
fn seed_race_approvals(bug: InjectedBug) -> usize {
    let l = ledger(bug, Duration::from_millis(20), &[("a", 100)]);
    let (w70, w80) = at_once(
        || withdraw_on(&l, "a", 70, "w70"),
        || withdraw_on(&l, "a", 80, "w80"),
    );
    [w70, w80]
        .iter()
        .filter(|r| r.outcome == LedgerOutcome::Approved)
        .count()
}

#[test]
fn lost_update_approves_both_seed_withdrawals_only_when_injected() {
    for bug in every_setting() {
        if bug == InjectedBug::LostUpdate {
            // Both must read before either writes back; retry if the scheduler split them.
            let raced = (0..3).any(|_| seed_race_approvals(bug) == 2);
            assert!(raced, "lost-update never approved both withdrawals");
        } else {
            assert_eq!(seed_race_approvals(bug), 1, "{bug:?}");
        }
    }
}

/// Two opposite transfers at once; true when they went first on different accounts.
fn opposite_orders(bug: InjectedBug) -> bool {
    let l = ledger(bug, Duration::from_millis(20), &[("x", 100), ("y", 100)]);
    let (xy, yx) = at_once(
        || transfer_on(&l, "x", "y", 10, "xy"),
        || transfer_on(&l, "y", "x", 20, "yx"),
    );
    assert!(xy.outcome == LedgerOutcome::Approved && yx.outcome == LedgerOutcome::Approved);
    // Money is conserved either way: the bug is in the ordering, not the sums.
    assert_eq!(truth(&l, "x").0 + truth(&l, "y").0, 200, "{bug:?}");
    assert_eq!((truth(&l, "x").1, truth(&l, "y").1), (2, 2), "{bug:?}");
    let xy_first_on_x = xy.sequence < yx.to_sequence;
    let xy_first_on_y = xy.to_sequence < yx.sequence;
    xy_first_on_x != xy_first_on_y
}

#[test]
fn non_atomic_transfer_orders_opposite_transfers_differently_only_when_injected() {
    for bug in every_setting() {
        if bug == InjectedBug::NonAtomicTransfer {
            let cycled = (0..3).any(|_| opposite_orders(bug));
            assert!(cycled, "non-atomic-transfer never produced opposite orders");
        } else {
            assert!(!opposite_orders(bug), "{bug:?}");
        }
    }
}

#[test]
fn non_atomic_transfer_still_answers_like_a_transfer() {
    let l = ledger(
        InjectedBug::NonAtomicTransfer,
        Duration::ZERO,
        &[("x", 5), ("y", 0)],
    );
    let denied = transfer_on(&l, "x", "y", 10, "big").unwrap();
    assert_eq!(denied.outcome, LedgerOutcome::InsufficientFunds);
    assert_eq!(
        (
            denied.balance,
            denied.sequence,
            denied.to_balance,
            denied.to_sequence
        ),
        (5, 1, 0, 1)
    );
    let moved = transfer_on(&l, "x", "y", 4, "small").unwrap();
    assert_eq!(
        (moved.balance, moved.sequence, moved.to_balance, moved.to_sequence),
        (1, 2, 4, 2)
    );
    let again = transfer_on(&l, "x", "y", 4, "small").unwrap();
    assert!(again.replayed);
    assert_eq!((again.sequence, again.to_sequence), (2, 2));
    assert_eq!((truth(&l, "x"), truth(&l, "y")), ((1, 2), (4, 2)));
}

/// Every money-moving op once, then each again with the same request id.
/// Returns the accounts' true states afterwards.
fn retry_everything(bug: InjectedBug) -> ((u64, u64), (u64, u64)) {
    let l = ledger(bug, Duration::ZERO, &[("a", 100), ("b", 0)]);
    type Op = fn(&Ledger) -> Result<OpResult, LedgerError>;
    let ops: [Op; 4] = [
        |l| deposit_on(l, "a", 10, "d"),
        |l| withdraw_on(l, "a", 30, "w"),
        |l| transfer_on(l, "a", "b", 5, "t"),
        |l| withdraw_on(l, "a", 1_000, "denied"),
    ];
    for op in ops {
        let first = op(&l).unwrap();
        let retry = op(&l).unwrap();
        assert!(retry.replayed && !first.replayed, "{bug:?}");
        // The answer itself is right in every setting: it is the stored one.
        assert_eq!(
            OpResult {
                replayed: false,
                ..retry
            },
            first,
            "{bug:?}"
        );
    }
    (truth(&l, "a"), truth(&l, "b"))
}

#[test]
fn double_apply_retry_applies_approved_retries_again_only_when_injected() {
    for bug in every_setting() {
        let (a, b) = retry_everything(bug);
        if bug == InjectedBug::DoubleApplyRetry {
            // 100 +10 +10 -30 -30 -5 -5; one denied withdrawal (1 seq, not re-applied).
            assert_eq!((a, b), ((50, 7), (10, 2)), "a retry took a new sequence number");
        } else {
            assert_eq!((a, b), ((75, 4), (5, 1)), "{bug:?}");
        }
    }
}

#[test]
fn stale_read_answers_an_older_sequence_only_when_injected() {
    for bug in every_setting() {
        let l = ledger(bug, Duration::ZERO, &[("a", 100)]);
        let account = l.account("a").unwrap();
        assert_eq!(l.balance(&account).sequence, 0);
        deposit_on(&l, "a", 10, "d").unwrap();
        let read = l.balance(&account);
        if bug == InjectedBug::StaleRead {
            assert_eq!(
                (read.balance, read.sequence),
                (100, 0),
                "the read right after lags"
            );
        } else {
            assert_eq!((read.balance, read.sequence), (110, 1), "{bug:?}");
        }
        assert_eq!(truth(&l, "a"), (110, 1), "the account itself is right");
    }
}

#[test]
fn stale_read_catches_up_after_its_lag() {
    let l = ledger(InjectedBug::StaleRead, Duration::ZERO, &[("a", 100)]);
    let account = l.account("a").unwrap();
    assert_eq!(l.balance(&account).sequence, 0);
    deposit_on(&l, "a", 10, "d").unwrap();
    thread::sleep(STALE_READ_LAG);
    assert_eq!(l.balance(&account).sequence, 1);
}

/// 2 × PARTIAL_APPLY_EVERY deposits then as many withdrawals of 10 on one
/// account; the request ids that failed.
fn partial_failures(l: &Ledger) -> Vec<String> {
    let mut failed = Vec::new();
    let every = 2 * PARTIAL_APPLY_EVERY;
    for (i, deposit) in (0..2 * every).map(|i| (i, i < every)) {
        let rid = format!("op{i}");
        let result = if deposit {
            deposit_on(l, "a", 10, &rid)
        } else {
            withdraw_on(l, "a", 10, &rid)
        };
        match result {
            Ok(r) => assert_eq!(r.outcome, LedgerOutcome::Approved),
            Err(LedgerError::Internal(m)) if m == PARTIAL_APPLY_MESSAGE => failed.push(rid),
            Err(e) => panic!("{rid}: {e}"),
        }
    }
    failed
}

#[test]
fn partial_apply_half_applies_one_in_ten_only_when_injected() {
    for bug in every_setting() {
        let l = ledger(bug, Duration::ZERO, &[("a", 1_000)]);
        let failed = partial_failures(&l);
        if bug != InjectedBug::PartialApply {
            assert!(failed.is_empty(), "{bug:?}: {failed:?}");
            assert_eq!(truth(&l, "a"), (1_000, 40), "{bug:?}");
            continue;
        }
        assert_eq!(failed, ["op9", "op19", "op29", "op39"]);
        // Two deposits and two withdrawals moved 5 instead of 10 (a wash),
        // but every op took a sequence number, the failed ones included.
        assert_eq!(truth(&l, "a"), (1_000, 40));
        let account = l.account("a").unwrap();
        for rid in &failed {
            let asked = l.operation(&account, rid).unwrap();
            assert_eq!(
                (asked.outcome, asked.sequence),
                (LedgerOutcome::NotApplied, 0),
                "{rid}"
            );
        }
        // The fence holds: a late copy of a failed id is not applied.
        assert_eq!(
            deposit_on(&l, "a", 10, "op9").unwrap().outcome,
            LedgerOutcome::NotApplied
        );
    }
}

#[test]
fn partial_apply_changes_the_balance_by_half() {
    let l = ledger(InjectedBug::PartialApply, Duration::ZERO, &[("a", 0)]);
    for i in 0..PARTIAL_APPLY_EVERY - 1 {
        deposit_on(&l, "a", 10, &format!("d{i}")).unwrap();
    }
    assert_eq!(truth(&l, "a"), (90, 9));
    assert!(deposit_on(&l, "a", 10, "half").is_err());
    assert_eq!(truth(&l, "a"), (95, 10), "half applied, a sequence number taken");
}

// ---- over gRPC: fast paths, runners and streams must not hide a bug ----

/// A gRPC server with `bug` planted and `delay` per op.
async fn server(bug: InjectedBug, delay: Duration) -> TestServer {
    start(config(|c| {
        c.ledger.inject_bug = bug;
        c.ledger.processing_delay = delay;
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_non_atomic_transfer_gives_opposite_orders() {
    let s = server(InjectedBug::NonAtomicTransfer, Duration::from_millis(20)).await;
    let mut bank = s.bank.clone();
    for attempt in 0..3 {
        let (x, y) = (format!("x{attempt}"), format!("y{attempt}"));
        open_all(&mut bank, &[(&x, 100), (&y, 100)]).await;
        let (mut b1, mut b2) = (bank.clone(), bank.clone());
        let (xy, yx) = tokio::join!(
            b1.transfer(transfer(&x, &y, 10, "xy")),
            b2.transfer(transfer(&y, &x, 10, "yx"))
        );
        let (xy, yx) = (ok(xy), ok(yx));
        if (xy.sequence < yx.to_sequence) != (xy.to_sequence < yx.sequence) {
            return;
        }
    }
    panic!("non-atomic-transfer never produced opposite orders over gRPC");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_double_apply_and_stale_read() {
    for bug in every_setting() {
        // Zero delay: the correct server takes its try-lock fast path here.
        let mut s = server(bug, Duration::ZERO).await;
        open_all(&mut s.bank, &[("a", 100)]).await;
        assert_eq!(state(&mut s.bank, "a").await, (100, 0));
        let first = ok(s.bank.deposit(deposit("a", 10, "d")).await);
        let retry = ok(s.bank.deposit(deposit("a", 10, "d")).await);
        assert_eq!((first.sequence, retry.sequence, retry.replayed), (1, 1, true));
        let read = state(&mut s.bank, "a").await;
        let expected = match bug {
            InjectedBug::StaleRead => (100, 0),
            InjectedBug::DoubleApplyRetry => (120, 2),
            _ => (110, 1),
        };
        assert_eq!(read, expected, "{bug:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_partial_apply_answers_internal_and_get_operation_not_applied() {
    for bug in [InjectedBug::None, InjectedBug::PartialApply] {
        let mut s = server(bug, Duration::ZERO).await;
        open_all(&mut s.bank, &[("a", 0)]).await;
        let mut failed = Vec::new();
        for i in 0..PARTIAL_APPLY_EVERY {
            let rid = format!("d{i}");
            match s.bank.deposit(deposit("a", 10, &rid)).await {
                Ok(r) => assert_eq!(r.into_inner().outcome(), Outcome::Approved),
                Err(status) => {
                    assert_eq!(status.code(), Code::Internal);
                    assert!(status.message().contains(PARTIAL_APPLY_MESSAGE), "{status:?}");
                    failed.push(rid);
                }
            }
        }
        if bug == InjectedBug::None {
            assert!(failed.is_empty());
            assert_eq!(state(&mut s.bank, "a").await, (100, 10));
            continue;
        }
        assert_eq!(failed, ["d9"]);
        assert_eq!(
            state(&mut s.bank, "a").await,
            (95, 10),
            "half applied, sequence taken"
        );
        let asked = ok(s.bank.get_operation(get_op("a", "d9")).await);
        assert_eq!(asked.outcome(), Outcome::NotApplied);
    }
}

/// Outcome values of 20 unary ops of each kind, then 20 streamed withdrawals.
async fn outcome_values(s: &mut TestServer) -> Vec<i32> {
    open_all(&mut s.bank, &[("a", 1_000), ("b", 1_000)]).await;
    let mut values = Vec::new();
    for i in 0..BAD_OUTCOME_EVERY {
        values.push(ok(s.bank.deposit(deposit("a", 1, &format!("d{i}"))).await).outcome);
        values.push(ok(s.bank.withdraw(withdraw("a", 1, &format!("w{i}"))).await).outcome);
        values.push(ok(s.bank.transfer(transfer("a", "b", 1, &format!("t{i}"))).await).outcome);
    }
    let requests: Vec<_> = (0..BAD_OUTCOME_EVERY)
        .map(|i| withdraw("b", 1, &format!("s{i}")))
        .collect();
    let mut answers = ok(s.bank.withdraw_stream(tokio_stream::iter(requests)).await);
    while let Some(answer) = answers.message().await.unwrap() {
        values.push(answer.outcome);
    }
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_bad_outcome_sends_outcome_7_one_in_20_and_applies_the_op() {
    let per_kind = usize::try_from(BAD_OUTCOME_EVERY).unwrap();
    for bug in every_setting() {
        let mut s = server(bug, Duration::ZERO).await;
        let values = outcome_values(&mut s).await;
        assert_eq!(values.len(), 4 * per_kind);
        let bad: Vec<usize> = (0..values.len())
            .filter(|&i| values[i] == BAD_OUTCOME_VALUE)
            .collect();
        if bug == InjectedBug::BadOutcome {
            // Every 20th answer, the streamed one (the 80th) included.
            assert_eq!(bad, [19, 39, 59, 79]);
        } else {
            assert!(bad.is_empty(), "{bug:?}: {bad:?}");
        }
        if bug == InjectedBug::None || bug == InjectedBug::BadOutcome {
            // The ops themselves were applied normally.
            assert_eq!(state(&mut s.bank, "a").await, (1_000 - 20, 60));
            assert_eq!(state(&mut s.bank, "b").await, (1_000, 40));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_lost_update_over_withdraw_stream() {
    let s = server(InjectedBug::LostUpdate, Duration::from_millis(20)).await;
    let mut bank = s.bank.clone();
    for attempt in 0..3 {
        let id = format!("seed{attempt}");
        open_all(&mut bank, &[(&id, 100)]).await;
        let streams = [70, 80].map(|amount| {
            let mut bank = bank.clone();
            let request = withdraw(&id, amount, &format!("w{amount}"));
            async move {
                let mut answers = ok(bank.withdraw_stream(tokio_stream::iter([request])).await);
                answers.message().await.unwrap().expect("an answer")
            }
        });
        let results = join_all(streams).await;
        if results.iter().all(|r| r.outcome() == Outcome::Approved) {
            return;
        }
    }
    panic!("lost-update never approved both streamed withdrawals");
}
