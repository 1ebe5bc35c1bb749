//! Idempotency, `idem-*`: the same request id with the same parameters is
//! answered with the stored result (`replayed = true`, no second effect, no
//! sequence number), even when the state has changed since; with other
//! parameters (amount, kind, target) it is ALREADY_EXISTS and changes
//! nothing; ids are scoped per account (the source, for a transfer).

use tonic::Code;

use super::ctx::{dep, wd, xfer, Cx, Step, Want};
use super::{check, Check};

const EXISTS: &[Code] = &[Code::AlreadyExists];

pub fn checks() -> Vec<Check> {
    vec![
        check!("idem-replay-deposit", "a deposit repeated with the same id and amount is replayed (replayed=true, same result), credited once", replay_deposit),
        check!("idem-replay-withdraw", "a withdrawal repeated with the same id and amount is replayed, debited once", replay_withdraw),
        check!("idem-replay-transfer", "a transfer repeated with the same id is replayed with both legs' results, moved once", replay_transfer),
        check!("idem-replay-denied", "a denied withdrawal repeated after a deposit is replayed as denied (the stored result, not a new decision)", replay_denied),
        check!("idem-replay-after-other-ops", "a replay after later ops returns the original balance and sequence, not the current ones", replay_after_others),
        check!("idem-conflict-amount", "the same request id with another amount is ALREADY_EXISTS and changes nothing", conflict_amount),
        check!("idem-conflict-kind", "a deposit's request id reused by a withdrawal of the same amount is ALREADY_EXISTS", conflict_kind),
        check!("idem-conflict-target", "a transfer's request id reused with another target account is ALREADY_EXISTS", conflict_target),
        check!("idem-per-account-scope", "the same request id on two accounts is two ops: both apply, neither is a replay", per_account),
    ]
}

async fn replay_deposit(cx: Cx) -> Step<()> {
    let a = cx.fresh(10).await?;
    cx.expect(dep(&a, 5, "d"), Want::approved(15, 1)).await?;
    cx.expect(dep(&a, 5, "d"), Want::approved(15, 1).replay()).await?;
    cx.state(&a, 15, 1).await
}

async fn replay_withdraw(cx: Cx) -> Step<()> {
    let a = cx.fresh(10).await?;
    cx.expect(wd(&a, 4, "w"), Want::approved(6, 1)).await?;
    cx.expect(wd(&a, 4, "w"), Want::approved(6, 1).replay()).await?;
    cx.state(&a, 6, 1).await
}

async fn replay_transfer(cx: Cx) -> Step<()> {
    let (a, b) = (cx.fresh(10).await?, cx.fresh(1).await?);
    let want = Want::approved(7, 1).to(4, 1);
    cx.expect(xfer(&a, &b, 3, "t"), want.clone()).await?;
    cx.expect(xfer(&a, &b, 3, "t"), want.replay()).await?;
    cx.state(&a, 7, 1).await?;
    cx.state(&b, 4, 1).await
}

async fn replay_denied(cx: Cx) -> Step<()> {
    let a = cx.fresh(10).await?;
    cx.expect(wd(&a, 20, "w"), Want::denied(10, 1)).await?;
    cx.expect(dep(&a, 30, "d"), Want::approved(40, 2)).await?;
    cx.expect(wd(&a, 20, "w"), Want::denied(10, 1).replay()).await?;
    cx.state(&a, 40, 2).await
}

async fn replay_after_others(cx: Cx) -> Step<()> {
    let a = cx.fresh(100).await?;
    cx.expect(wd(&a, 10, "first"), Want::approved(90, 1)).await?;
    cx.expect(wd(&a, 20, "second"), Want::approved(70, 2)).await?;
    cx.expect(dep(&a, 5, "third"), Want::approved(75, 3)).await?;
    cx.expect(wd(&a, 10, "first"), Want::approved(90, 1).replay())
        .await?;
    cx.state(&a, 75, 3).await
}

async fn conflict_amount(cx: Cx) -> Step<()> {
    let a = cx.fresh(100).await?;
    cx.expect(wd(&a, 10, "w"), Want::approved(90, 1)).await?;
    cx.refused(wd(&a, 11, "w"), EXISTS).await?;
    cx.refused(dep(&a, 12, "w"), EXISTS).await?;
    cx.state(&a, 90, 1).await?;
    cx.expect(wd(&a, 10, "w"), Want::approved(90, 1).replay()).await?;
    Ok(())
}

async fn conflict_kind(cx: Cx) -> Step<()> {
    let a = cx.fresh(100).await?;
    cx.expect(dep(&a, 10, "k"), Want::approved(110, 1)).await?;
    cx.refused(wd(&a, 10, "k"), EXISTS).await?;
    cx.state(&a, 110, 1).await
}

async fn conflict_target(cx: Cx) -> Step<()> {
    let (a, b, c) = (cx.fresh(100).await?, cx.fresh(0).await?, cx.fresh(0).await?);
    cx.expect(xfer(&a, &b, 10, "t"), Want::approved(90, 1).to(10, 1))
        .await?;
    cx.refused(xfer(&a, &c, 10, "t"), EXISTS).await?;
    cx.state(&a, 90, 1).await?;
    cx.state(&c, 0, 0).await
}

async fn per_account(cx: Cx) -> Step<()> {
    let (a, b) = (cx.fresh(100).await?, cx.fresh(50).await?);
    cx.expect(wd(&a, 10, "same"), Want::approved(90, 1)).await?;
    cx.expect(wd(&b, 10, "same"), Want::approved(40, 1)).await?;
    cx.expect(dep(&b, 7, "only-b"), Want::approved(47, 2)).await?;
    cx.expect(dep(&a, 8, "only-b"), Want::approved(98, 2)).await?;
    cx.state(&a, 98, 2).await?;
    cx.state(&b, 47, 2).await
}
