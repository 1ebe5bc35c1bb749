//! Every RPC's plain answer and the sequence numbers: `rpc-*` (OpenAccount,
//! GetBalance, Deposit, Withdraw approved and denied in-band, reads that see
//! every earlier write, calls without a request id) and `seq-*` (1, 2, 3
//! with no gaps; a denial takes one; an opening, a refusal, a replay and a
//! NOT_APPLIED take none).

use tonic::Code;

use super::ctx::{dep, get_op, wd, Cx, Step, Want};
use super::{check, Check};

/// Deposit-then-read rounds of `rpc-read-your-writes`.
const READ_ROUNDS: u64 = 10;

pub fn checks() -> Vec<Check> {
    vec![
        check!("rpc-open-account", "OpenAccount echoes the id and balance with sequence 0; GetBalance reads the same", open_account),
        check!("rpc-open-zero-balance", "an account may be opened with balance 0", open_zero),
        check!("rpc-deposit", "Deposit is approved: balance + amount, sequence 1, request id echoed, replayed false", deposit),
        check!("rpc-withdraw-approved", "Withdraw with enough funds is approved: balance - amount, next sequence", withdraw_approved),
        check!("rpc-withdraw-insufficient", "Withdraw beyond the balance is OUTCOME_INSUFFICIENT_FUNDS in-band (OK status), balance unchanged", withdraw_denied),
        check!("rpc-read-your-writes", "GetBalance right after each of 10 deposits shows it: reads are taken under the lock, never from a stale copy", read_your_writes),
        check!("rpc-no-request-id", "ops without a request id are not idempotent: two equal deposits both apply, request_id \"\"", no_request_id),
        check!("seq-gapless", "deposit, withdrawal, denial, deposit take sequence 1, 2, 3, 4; GetBalance says 4", gapless),
        check!("seq-open-takes-none", "OpenAccount takes no sequence number: the first op takes 1", open_takes_none),
        check!("seq-refusals-take-none", "refused calls (amount 0, reused id, unknown target) take no sequence number", refusals_take_none),
        check!("seq-not-applied-takes-none", "an op answered NOT_APPLIED (fenced id) takes no sequence number", not_applied_takes_none),
    ]
}

async fn open_account(cx: Cx) -> Step<()> {
    let id = cx.fresh(1234).await?;
    cx.state(&id, 1234, 0).await
}

async fn open_zero(cx: Cx) -> Step<()> {
    let id = cx.fresh(0).await?;
    cx.state(&id, 0, 0).await
}

async fn deposit(cx: Cx) -> Step<()> {
    let id = cx.fresh(100).await?;
    let got = cx.expect(dep(&id, 25, "d1"), Want::approved(125, 1)).await?;
    super::ctx::ensure(got.request_id == "d1", || {
        format!(
            "Deposit with request id \"d1\" answered request_id {:?}",
            got.request_id
        )
    })?;
    cx.state(&id, 125, 1).await
}

async fn withdraw_approved(cx: Cx) -> Step<()> {
    let id = cx.fresh(100).await?;
    cx.expect(wd(&id, 70, "w1"), Want::approved(30, 1)).await?;
    cx.state(&id, 30, 1).await
}

async fn withdraw_denied(cx: Cx) -> Step<()> {
    let id = cx.fresh(100).await?;
    cx.expect(wd(&id, 101, "w1"), Want::denied(100, 1)).await?;
    cx.state(&id, 100, 1).await
}

async fn read_your_writes(cx: Cx) -> Step<()> {
    let id = cx.fresh(0).await?;
    cx.state(&id, 0, 0).await?;
    for n in 1..=READ_ROUNDS {
        cx.expect(dep(&id, 1, ""), Want::approved(n, n)).await?;
        cx.state(&id, n, n).await?;
    }
    Ok(())
}

async fn no_request_id(cx: Cx) -> Step<()> {
    let id = cx.fresh(0).await?;
    let got = cx.expect(dep(&id, 5, ""), Want::approved(5, 1)).await?;
    super::ctx::ensure(got.request_id.is_empty(), || {
        format!(
            "Deposit without request id answered request_id {:?}",
            got.request_id
        )
    })?;
    cx.expect(dep(&id, 5, ""), Want::approved(10, 2)).await?;
    cx.state(&id, 10, 2).await
}

async fn gapless(cx: Cx) -> Step<()> {
    let id = cx.fresh(50).await?;
    cx.expect(dep(&id, 10, "a"), Want::approved(60, 1)).await?;
    cx.expect(wd(&id, 20, "b"), Want::approved(40, 2)).await?;
    cx.expect(wd(&id, 41, "c"), Want::denied(40, 3)).await?;
    cx.expect(dep(&id, 1, ""), Want::approved(41, 4)).await?;
    cx.state(&id, 41, 4).await
}

async fn open_takes_none(cx: Cx) -> Step<()> {
    let id = cx.fresh(7).await?;
    cx.state(&id, 7, 0).await?;
    cx.expect(wd(&id, 7, "w"), Want::approved(0, 1)).await?;
    cx.state(&id, 0, 1).await
}

async fn refusals_take_none(cx: Cx) -> Step<()> {
    let id = cx.fresh(100).await?;
    cx.expect(dep(&id, 10, "r"), Want::approved(110, 1)).await?;
    cx.refused(dep(&id, 0, ""), &[Code::InvalidArgument]).await?;
    cx.refused(wd(&id, 0, ""), &[Code::InvalidArgument]).await?;
    cx.refused(dep(&id, 11, "r"), &[Code::AlreadyExists]).await?;
    let nowhere = cx.account();
    cx.refused(super::ctx::xfer(&id, &nowhere, 5, ""), &[Code::NotFound])
        .await?;
    cx.state(&id, 110, 1).await?;
    cx.expect(wd(&id, 10, ""), Want::approved(100, 2)).await?;
    Ok(())
}

async fn not_applied_takes_none(cx: Cx) -> Step<()> {
    let id = cx.fresh(100).await?;
    cx.expect(get_op(&id, "late"), Want::not_applied(false)).await?;
    cx.expect(wd(&id, 10, "late"), Want::not_applied(true)).await?;
    cx.state(&id, 100, 0).await?;
    cx.expect(wd(&id, 10, "next"), Want::approved(90, 1)).await?;
    Ok(())
}
