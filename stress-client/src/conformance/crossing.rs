//! Transfers crossing at once, `monitor-concurrent-transfers`: 16 transfers
//! between two accounts in both directions, sent together. Each account's
//! legs must number 1..16 and replay from its opening balance (a debit
//! denied only when the balance before it is short), and both accounts must
//! put the transfers in the same order: a transfer is one step on both
//! accounts at once, so the order of its source leg and of its target leg
//! agree. A transfer that debits and credits in two critical sections lets
//! two opposite transfers pass each other, one first on each account.

use bank::v1 as pb;
use pb::Outcome;

use super::ctx::{fail, send_op_until_answered, show_status, xfer, Cx, Step};
use super::{check, Check};

/// Transfers sent at once (half each way).
const CROSSING: u64 = 16;
/// Both accounts' opening balance.
const OPENING: u64 = 60;

pub fn checks() -> Vec<Check> {
    vec![check!(
        "monitor-concurrent-transfers",
        "16 opposite transfers at once: each account's legs replay in sequence order, and both accounts order them alike",
        crossing
    )]
}

/// One transfer's leg on one account.
#[derive(Debug, Clone, Copy)]
struct Leg {
    /// Which transfer (its index in the batch).
    transfer: usize,
    sequence: u64,
    /// The account's balance after the leg.
    balance: u64,
    /// +amount for a credit, -amount for a debit, as approved or denied.
    credit: bool,
    amount: u64,
    approved: bool,
}

async fn crossing(cx: Cx) -> Step<()> {
    let (a, b) = (cx.fresh(OPENING).await?, cx.fresh(OPENING).await?);
    let calls = (0..CROSSING).map(|i| {
        let (from, to) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let amount = 7 + i;
        let op = xfer(from, to, amount, &format!("x{i}"));
        let call = send_op_until_answered(cx.bank(), op, cx.shared.timeout);
        async move { (i % 2 == 0, amount, call.await) }
    });
    let (mut on_a, mut on_b) = (Vec::new(), Vec::new());
    for (i, (a_to_b, amount, answer)) in futures::future::join_all(calls).await.into_iter().enumerate() {
        let got = answer.or_else(|s| {
            fail(format!(
                "transfer x{i} of {amount}: got {}; expected OK",
                show_status(&s)
            ))
        })?;
        let (source, target) = legs(i, amount, &got);
        let (from, to) = if a_to_b {
            (&mut on_a, &mut on_b)
        } else {
            (&mut on_b, &mut on_a)
        };
        from.push(source);
        to.push(target);
    }
    let end_a = replay(&a, &mut on_a)?;
    let end_b = replay(&b, &mut on_b)?;
    same_order(&on_a, &on_b)?;
    cx.state(&a, end_a, CROSSING).await?;
    cx.state(&b, end_b, CROSSING).await
}

/// The source and target legs of transfer `i`'s answer.
fn legs(i: usize, amount: u64, got: &pb::OperationResult) -> (Leg, Leg) {
    let approved = got.outcome == Outcome::Approved as i32;
    let leg = |sequence, balance, credit| Leg {
        transfer: i,
        sequence,
        balance,
        credit,
        amount,
        approved,
    };
    (
        leg(got.sequence, got.balance, false),
        leg(got.to_sequence, got.to_balance, true),
    )
}

/// Sorts `legs` by sequence and replays them from [`OPENING`]: the final balance.
fn replay(account: &str, legs: &mut [Leg]) -> Step<u64> {
    legs.sort_by_key(|l| l.sequence);
    let mut balance = OPENING;
    for (i, leg) in legs.iter().enumerate() {
        if leg.sequence != i as u64 + 1 {
            let seen: Vec<u64> = legs.iter().map(|l| l.sequence).collect();
            return fail(format!(
                "{account}: the transfers' legs took sequences {seen:?}; expected 1..={}",
                legs.len()
            ));
        }
        let after = match (leg.credit, leg.approved) {
            (true, true) => balance.checked_add(leg.amount),
            (false, true) => balance.checked_sub(leg.amount),
            (true, false) => Some(balance),
            (false, false) => (balance < leg.amount).then_some(balance),
        };
        if after != Some(leg.balance) {
            return fail(format!(
                "{account}: transfer x{} ({} of {}, {}) at sequence {} answered balance {}, but the balance before it was {balance}",
                leg.transfer,
                if leg.credit { "credit" } else { "debit" },
                leg.amount,
                if leg.approved { "approved" } else { "denied" },
                leg.sequence,
                leg.balance
            ));
        }
        balance = leg.balance;
    }
    Ok(balance)
}

/// Both accounts (legs sorted by sequence) must order the transfers alike.
fn same_order(on_a: &[Leg], on_b: &[Leg]) -> Step<()> {
    let order_a: Vec<usize> = on_a.iter().map(|l| l.transfer).collect();
    let order_b: Vec<usize> = on_b.iter().map(|l| l.transfer).collect();
    if order_a != order_b {
        return fail(format!(
            "the two accounts ordered the transfers differently (by sequence: {order_a:?} on one, {order_b:?} on the other): a transfer was not one step on both"
        ));
    }
    Ok(())
}
