//! Transfers, `xfer-*`: both legs' balances and sequence numbers in the
//! answer and in GetBalance, a denial that takes a number on both accounts,
//! an unknown source or target (NOT_FOUND; the target is NOT_FOUND even
//! with a token), opposite transfers, and an overflowing credit.

use tonic::Code;

use super::ctx::{dep, xfer, Cx, Step, Want};
use super::{check, Check};

pub fn checks() -> Vec<Check> {
    vec![
        check!("xfer-approved-both-legs", "an approved transfer answers and leaves source - amount and target + amount, each at its next sequence", approved),
        check!("xfer-insufficient-both-seq", "a denied transfer takes a sequence number on both accounts and moves nothing", denied),
        check!("xfer-sequences-independent", "each leg takes its own account's next number (source at 3, target at 1)", independent),
        check!("xfer-back-and-forth", "opposite transfers between two accounts apply in turn; money is conserved", back_and_forth),
        check!("xfer-to-unknown", "a transfer to an unknown account is NOT_FOUND (even with a token) and changes nothing", to_unknown),
        check!("xfer-from-unknown", "a transfer from an unknown account is NOT_FOUND (with a token: or PERMISSION_DENIED)", from_unknown),
        check!("xfer-overflow", "a transfer whose credit would pass 2^64-1 is FAILED_PRECONDITION and changes neither account", overflow),
    ]
}

async fn approved(cx: Cx) -> Step<()> {
    let (a, b) = (cx.fresh(100).await?, cx.fresh(20).await?);
    cx.expect(xfer(&a, &b, 30, "t"), Want::approved(70, 1).to(50, 1))
        .await?;
    cx.state(&a, 70, 1).await?;
    cx.state(&b, 50, 1).await
}

async fn denied(cx: Cx) -> Step<()> {
    let (a, b) = (cx.fresh(10).await?, cx.fresh(20).await?);
    cx.expect(xfer(&a, &b, 11, "t"), Want::denied(10, 1).to(20, 1))
        .await?;
    cx.state(&a, 10, 1).await?;
    cx.state(&b, 20, 1).await
}

async fn independent(cx: Cx) -> Step<()> {
    let (a, b) = (cx.fresh(100).await?, cx.fresh(0).await?);
    cx.expect(dep(&a, 1, ""), Want::approved(101, 1)).await?;
    cx.expect(dep(&a, 1, ""), Want::approved(102, 2)).await?;
    cx.expect(xfer(&a, &b, 2, "t"), Want::approved(100, 3).to(2, 1))
        .await?;
    cx.expect(dep(&b, 1, ""), Want::approved(3, 2)).await?;
    Ok(())
}

async fn back_and_forth(cx: Cx) -> Step<()> {
    let (a, b) = (cx.fresh(50).await?, cx.fresh(50).await?);
    cx.expect(xfer(&a, &b, 30, "1"), Want::approved(20, 1).to(80, 1))
        .await?;
    cx.expect(xfer(&b, &a, 70, "2"), Want::approved(10, 2).to(90, 2))
        .await?;
    cx.expect(xfer(&a, &b, 91, "3"), Want::denied(90, 3).to(10, 3))
        .await?;
    cx.state(&a, 90, 3).await?;
    cx.state(&b, 10, 3).await
}

async fn to_unknown(cx: Cx) -> Step<()> {
    let a = cx.fresh(100).await?;
    let nowhere = cx.account();
    cx.refused(xfer(&a, &nowhere, 10, "t"), &[Code::NotFound]).await?;
    cx.state(&a, 100, 0).await?;
    // The refusal recorded nothing: the id is still free.
    let b = cx.fresh(0).await?;
    cx.expect(xfer(&a, &b, 10, "t"), Want::approved(90, 1).to(10, 1))
        .await?;
    Ok(())
}

async fn from_unknown(cx: Cx) -> Step<()> {
    let b = cx.fresh(100).await?;
    let nowhere = cx.account();
    cx.refused(xfer(&nowhere, &b, 10, "t"), cx.unknown_codes())
        .await?;
    cx.state(&b, 100, 0).await
}

async fn overflow(cx: Cx) -> Step<()> {
    let (a, b) = (cx.fresh(100).await?, cx.fresh(u64::MAX - 5).await?);
    cx.refused(xfer(&a, &b, 10, "t"), &[Code::FailedPrecondition])
        .await?;
    cx.state(&a, 100, 0).await?;
    cx.state(&b, u64::MAX - 5, 0).await
}
