//! Tokens and ownership, `auth-*` (with `--token`; the ownership checks
//! also need `--second-token`, else they are skipped): a call without a
//! token, or with one nobody was given, is UNAUTHENTICATED; the second
//! principal gets PERMISSION_DENIED for every RPC on the first's account
//! (and, so that ids do not leak, for an unknown account too), is recorded
//! nowhere and changes nothing; a transfer's target may be anyone's.

use tonic::Code;

use super::ctx::{dep, get_op, wd, wd_wait, withdrawal, xfer, Cx, Step, Stop, Want};
use super::stream::stream_as;
use super::{check, Check};
use crate::transport::Bank;

const DENIED: &[Code] = &[Code::PermissionDenied];
const UNAUTHENTICATED: &[Code] = &[Code::Unauthenticated];

pub fn checks() -> Vec<Check> {
    vec![
        check!("auth-missing-token", "without a token, OpenAccount, GetBalance and Deposit are UNAUTHENTICATED and change nothing (needs --token)", missing_token),
        check!("auth-unknown-token", "with a token nobody was given, calls are UNAUTHENTICATED (needs --token)", unknown_token),
        check!("auth-other-read", "the second principal's GetBalance of the first's account is PERMISSION_DENIED (needs --second-token)", other_read),
        check!("auth-other-money-ops", "the second principal's Deposit, Withdraw and waiting Withdraw on the first's account are PERMISSION_DENIED, record no id, change nothing", other_money),
        check!("auth-other-transfer-from", "the second principal's transfer from the first's account is PERMISSION_DENIED; nothing moves", other_transfer),
        check!("auth-other-get-operation", "the second principal's GetOperation on the first's account is PERMISSION_DENIED and fences nothing", other_get_operation),
        check!("auth-other-stream", "the second principal's WithdrawStream on the first's account ends PERMISSION_DENIED with no answer", other_stream),
        check!("auth-unknown-indistinguishable", "for the second principal an unknown account is PERMISSION_DENIED like the first's existing one (ids do not leak)", indistinguishable),
        check!("auth-transfer-to-other", "a transfer to another principal's account is allowed (only the source must be the caller's)", transfer_to_other),
    ]
}

/// The caller without a token and the one with a token nobody was given.
fn strangers(cx: &Cx) -> Step<(Bank, Bank)> {
    cx.shared
        .anonymous
        .clone()
        .ok_or_else(|| Stop::Skip("needs --token (a server with tokens)".into()))
}

/// The second principal.
fn second(cx: &Cx) -> Step<Bank> {
    cx.shared
        .second
        .clone()
        .ok_or_else(|| Stop::Skip("needs --token and --second-token (two principals)".into()))
}

/// `bank` is refused UNAUTHENTICATED on OpenAccount, GetBalance and Deposit.
async fn unauthenticated(cx: &Cx, bank: &Bank) -> Step<()> {
    let a = cx.fresh(100).await?;
    cx.balance_refused(bank, &a, UNAUTHENTICATED).await?;
    cx.refused_as(bank, dep(&a, 1, "d"), UNAUTHENTICATED).await?;
    let mut open = bank.clone();
    let message = bank::v1::OpenAccountRequest {
        account_id: cx.account(),
        initial_balance: 1,
    };
    let sent = format!("OpenAccount without a valid token {}", super::ctx::show(&message));
    let answer = open.open_account(cx.req(message)).await;
    super::ctx::check_refused(&sent, answer.map(tonic::Response::into_inner), UNAUTHENTICATED)?;
    cx.state(&a, 100, 0).await
}

async fn missing_token(cx: Cx) -> Step<()> {
    let (none, _) = strangers(&cx)?;
    unauthenticated(&cx, &none).await
}

async fn unknown_token(cx: Cx) -> Step<()> {
    let (_, stranger) = strangers(&cx)?;
    unauthenticated(&cx, &stranger).await
}

async fn other_read(cx: Cx) -> Step<()> {
    let bob = second(&cx)?;
    let a = cx.fresh(100).await?;
    cx.balance_refused(&bob, &a, DENIED).await?;
    Ok(())
}

async fn other_money(cx: Cx) -> Step<()> {
    let bob = second(&cx)?;
    let a = cx.fresh(100).await?;
    cx.refused_as(&bob, dep(&a, 5, "d"), DENIED).await?;
    cx.refused_as(&bob, wd(&a, 5, "w"), DENIED).await?;
    cx.refused_as(&bob, wd_wait(&a, 500, "ww"), DENIED).await?;
    cx.state(&a, 100, 0).await?;
    for rid in ["d", "w", "ww"] {
        cx.expect(get_op(&a, rid), Want::not_applied(false)).await?;
    }
    Ok(())
}

async fn other_transfer(cx: Cx) -> Step<()> {
    let bob = second(&cx)?;
    let a = cx.fresh(100).await?;
    let b = cx.account();
    cx.open_as(&bob, &b, 0).await?;
    cx.refused_as(&bob, xfer(&a, &b, 50, "t"), DENIED).await?;
    cx.state(&a, 100, 0).await?;
    cx.expect(get_op(&a, "t"), Want::not_applied(false)).await?;
    Ok(())
}

async fn other_get_operation(cx: Cx) -> Step<()> {
    let bob = second(&cx)?;
    let a = cx.fresh(100).await?;
    cx.expect(wd(&a, 10, "known"), Want::approved(90, 1)).await?;
    cx.refused_as(&bob, get_op(&a, "known"), DENIED).await?;
    cx.refused_as(&bob, get_op(&a, "unseen"), DENIED).await?;
    // Not fenced by the refused lookup: the owner's op under that id applies.
    cx.expect(wd(&a, 10, "unseen"), Want::approved(80, 2)).await?;
    Ok(())
}

async fn other_stream(cx: Cx) -> Step<()> {
    let bob = second(&cx)?;
    let a = cx.fresh(100).await?;
    let requests = vec![withdrawal(&a, 10, "s", false)];
    let (answers, ended) = stream_as(&cx, &bob, requests).await;
    let code = ended.as_ref().map(tonic::Status::code);
    if !answers.is_empty() || code != Some(Code::PermissionDenied) {
        return super::ctx::fail(format!(
            "sent WithdrawStream [Withdraw 10 from {a:?}] as the second principal; got {} answers, ended {:?}; expected no answer and PermissionDenied",
            answers.len(),
            ended.map(|s| super::ctx::show_status(&s))
        ));
    }
    cx.state(&a, 100, 0).await
}

async fn indistinguishable(cx: Cx) -> Step<()> {
    let bob = second(&cx)?;
    let a = cx.fresh(100).await?;
    let nowhere = cx.account();
    cx.balance_refused(&bob, &a, DENIED).await?;
    cx.balance_refused(&bob, &nowhere, DENIED).await?;
    cx.refused_as(&bob, dep(&nowhere, 1, "d"), DENIED).await?;
    cx.refused_as(&bob, get_op(&nowhere, "g"), DENIED).await?;
    Ok(())
}

async fn transfer_to_other(cx: Cx) -> Step<()> {
    let bob = second(&cx)?;
    let a = cx.fresh(100).await?;
    let b = cx.account();
    cx.open_as(&bob, &b, 5).await?;
    cx.expect(xfer(&a, &b, 40, "t"), Want::approved(60, 1).to(45, 1))
        .await?;
    Ok(())
}
