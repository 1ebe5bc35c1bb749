//! Fencing by GetOperation, `fence-*`: an unseen id is answered NOT_APPLIED
//! with `replayed = false` and recorded, so a late copy of the op is a
//! NOT_APPLIED replay that changes nothing; a known id is answered with its
//! stored result (`replayed = true`); fences are per account.

use super::ctx::{dep, ensure, get_op, wd, xfer, Cx, Step, Want};
use super::{check, Check};

pub fn checks() -> Vec<Check> {
    vec![
        check!("fence-unseen-not-applied", "GetOperation of an unseen id answers NOT_APPLIED, replayed=false, balance and sequence 0, the id echoed", unseen),
        check!("fence-late-copy-refused", "a deposit, withdrawal or transfer under a fenced id is a NOT_APPLIED replay and changes nothing", late_copy),
        check!("fence-repeat", "GetOperation of an id it fenced earlier answers NOT_APPLIED with replayed=true", repeat),
        check!("fence-known-approved", "GetOperation of an applied op returns its stored result with replayed=true", known_approved),
        check!("fence-known-denied", "GetOperation of a denied op returns OUTCOME_INSUFFICIENT_FUNDS with its sequence, replayed=true", known_denied),
        check!("fence-known-transfer", "GetOperation on a transfer's source returns both legs' stored results", known_transfer),
        check!("fence-per-account", "fencing an id on one account does not fence it on another", per_account),
    ]
}

async fn unseen(cx: Cx) -> Step<()> {
    let a = cx.fresh(100).await?;
    let got = cx
        .expect(get_op(&a, "never-sent"), Want::not_applied(false))
        .await?;
    ensure(got.request_id == "never-sent", || {
        format!(
            "GetOperation of \"never-sent\" answered request_id {:?}",
            got.request_id
        )
    })?;
    cx.state(&a, 100, 0).await
}

async fn late_copy(cx: Cx) -> Step<()> {
    let (a, b) = (cx.fresh(100).await?, cx.fresh(0).await?);
    for rid in ["d", "w", "t"] {
        cx.expect(get_op(&a, rid), Want::not_applied(false)).await?;
    }
    cx.expect(dep(&a, 5, "d"), Want::not_applied(true)).await?;
    cx.expect(wd(&a, 5, "w"), Want::not_applied(true)).await?;
    cx.expect(xfer(&a, &b, 5, "t"), Want::not_applied(true)).await?;
    cx.state(&a, 100, 0).await?;
    cx.state(&b, 0, 0).await
}

async fn repeat(cx: Cx) -> Step<()> {
    let a = cx.fresh(100).await?;
    cx.expect(get_op(&a, "g"), Want::not_applied(false)).await?;
    cx.expect(get_op(&a, "g"), Want::not_applied(true)).await?;
    cx.state(&a, 100, 0).await
}

async fn known_approved(cx: Cx) -> Step<()> {
    let a = cx.fresh(100).await?;
    cx.expect(wd(&a, 30, "w"), Want::approved(70, 1)).await?;
    cx.expect(dep(&a, 1, "d"), Want::approved(71, 2)).await?;
    let got = cx.expect(get_op(&a, "w"), Want::approved(70, 1).replay()).await?;
    ensure(got.request_id == "w", || {
        format!("GetOperation of \"w\" answered request_id {:?}", got.request_id)
    })?;
    cx.state(&a, 71, 2).await
}

async fn known_denied(cx: Cx) -> Step<()> {
    let a = cx.fresh(10).await?;
    cx.expect(wd(&a, 30, "w"), Want::denied(10, 1)).await?;
    cx.expect(get_op(&a, "w"), Want::denied(10, 1).replay()).await?;
    cx.state(&a, 10, 1).await
}

async fn known_transfer(cx: Cx) -> Step<()> {
    let (a, b) = (cx.fresh(100).await?, cx.fresh(5).await?);
    let want = Want::approved(60, 1).to(45, 1);
    cx.expect(xfer(&a, &b, 40, "t"), want.clone()).await?;
    cx.expect(get_op(&a, "t"), want.replay()).await?;
    Ok(())
}

async fn per_account(cx: Cx) -> Step<()> {
    let (a, b) = (cx.fresh(100).await?, cx.fresh(100).await?);
    cx.expect(get_op(&a, "x"), Want::not_applied(false)).await?;
    cx.expect(wd(&b, 10, "x"), Want::approved(90, 1)).await?;
    cx.expect(wd(&a, 10, "x"), Want::not_applied(true)).await?;
    cx.state(&a, 100, 0).await
}
