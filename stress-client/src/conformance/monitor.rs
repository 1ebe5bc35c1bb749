//! The monitor under contention, `monitor-*`: many ops on one account at
//! once. Whatever order the server picks, the answers must number 1..n with
//! no gap or repeat, and replayed in that order from the opening balance
//! each answer's balance must follow from the one before (a withdrawal is
//! denied only when the balance before it is short). The seed's race (no
//! lock across the delay) breaks this at once.

use bank::v1 as pb;
use pb::Outcome;

use super::ctx::{dep, fail, send_op_until_answered, show, wd, Cx, Op, Step};
use super::{check, Check};

/// Ops sent at once on one account.
const AT_ONCE: u64 = 16;

pub fn checks() -> Vec<Check> {
    vec![
        check!("monitor-concurrent-withdrawals", "16 withdrawals of 10 at once from 100: 10 approved, 6 denied, sequences 1..16, each balance follows from the one before", withdrawals),
        check!("monitor-concurrent-mixed", "16 deposits and withdrawals at once: sequences 1..16 and one order explains every answer and the final balance", mixed),
    ]
}

/// A signed change: +amount for a deposit, -amount for a withdrawal.
#[derive(Debug, Clone, Copy)]
struct Change {
    deposit: bool,
    amount: u64,
}

/// Sends `ops` (with their changes) at once on `a` (opened with `initial`),
/// then checks the answers and the final state; returns the approvals.
async fn contend(cx: &Cx, a: &str, initial: u64, ops: Vec<(Op, Change)>) -> Step<usize> {
    let sent = format!(
        "{} ops at once on {a}: {}",
        ops.len(),
        show(&ops.iter().map(|(op, _)| op).collect::<Vec<_>>())
    );
    let calls = ops.into_iter().map(|(op, change)| {
        let call = send_op_until_answered(cx.bank(), op, cx.shared.timeout);
        async move { (change, call.await) }
    });
    let mut answers = Vec::new();
    for (change, answer) in futures::future::join_all(calls).await {
        match answer {
            Ok(got) => answers.push((change, got)),
            Err(s) => {
                return fail(format!(
                    "sent {sent}; one got {}; expected OK",
                    super::ctx::show_status(&s)
                ))
            }
        }
    }
    answers.sort_by_key(|(_, got)| got.sequence);
    let (balance, approved) = replay(&sent, initial, &answers)?;
    cx.state(a, balance, answers.len() as u64).await?;
    Ok(approved)
}

/// Replays `answers` (sorted by sequence) from `initial`: the final balance
/// and the approvals, or the first answer no order explains.
fn replay(sent: &str, initial: u64, answers: &[(Change, pb::OperationResult)]) -> Step<(u64, usize)> {
    let (mut balance, mut approved) = (initial, 0);
    for (i, (change, got)) in answers.iter().enumerate() {
        let expected = i as u64 + 1;
        if got.sequence != expected {
            return fail(format!(
                "sent {sent}; sorted by sequence the answers read {:?}; expected 1..={}",
                sequences(answers),
                answers.len()
            ));
        }
        let after = match (change.deposit, got.outcome) {
            (true, o) if o == Outcome::Approved as i32 => balance.checked_add(change.amount),
            (false, o) if o == Outcome::Approved as i32 => balance.checked_sub(change.amount),
            (false, o) if o == Outcome::InsufficientFunds as i32 && balance < change.amount => Some(balance),
            _ => None,
        };
        match after {
            Some(b) if b == got.balance => balance = b,
            _ => {
                return fail(format!(
                    "sent {sent}; the op at sequence {expected} ({change:?}) answered {} with balance {} but the balance before it was {balance}",
                    super::ctx::outcome_name(got.outcome),
                    got.balance
                ))
            }
        }
        approved += usize::from(got.outcome == Outcome::Approved as i32);
    }
    Ok((balance, approved))
}

fn sequences(answers: &[(Change, pb::OperationResult)]) -> Vec<u64> {
    answers.iter().map(|(_, got)| got.sequence).collect()
}

async fn withdrawals(cx: Cx) -> Step<()> {
    let a = cx.fresh(100).await?;
    let ops = (0..AT_ONCE)
        .map(|i| {
            (
                wd(&a, 10, &format!("w{i}")),
                Change {
                    deposit: false,
                    amount: 10,
                },
            )
        })
        .collect();
    let approved = contend(&cx, &a, 100, ops).await?;
    if approved != 10 {
        return fail(format!(
            "16 withdrawals of 10 from 100: {approved} approved; expected 10"
        ));
    }
    Ok(())
}

async fn mixed(cx: Cx) -> Step<()> {
    let a = cx.fresh(50).await?;
    let ops = (0..AT_ONCE)
        .map(|i| {
            let amount = 5 + i * 3;
            let rid = format!("m{i}");
            match i % 2 {
                0 => (
                    dep(&a, amount, &rid),
                    Change {
                        deposit: true,
                        amount,
                    },
                ),
                _ => (
                    wd(&a, amount, &rid),
                    Change {
                        deposit: false,
                        amount,
                    },
                ),
            }
        })
        .collect();
    contend(&cx, &a, 50, ops).await?;
    Ok(())
}
