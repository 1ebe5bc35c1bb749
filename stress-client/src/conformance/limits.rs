//! Limits, `limit-*`: ids at their byte limits (counted in bytes, not
//! chars), the largest balance and credits past it (FAILED_PRECONDITION,
//! nothing changes), a message over the size limit (OUT_OF_RANGE, the
//! server keeps serving), the waiters' admission limit (RESOURCE_EXHAUSTED,
//! checked only if reached within [`WAITERS_TRIED`] waiters), and health.

use std::time::Duration;

use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use super::ctx::{
    dep, ensure, fail, get_op, is_retryable, send_op, send_op_until_answered, show, show_status, wd, wd_wait,
    Cx, Step, Stop, Want,
};
use super::invalid::padded;
use super::{check, Check};

/// The size of the oversized message: past 4 MiB, the usual default limit of gRPC servers.
const HUGE_MESSAGE_BYTES: usize = 4 * 1024 * 1024 + 512 * 1024;
/// Waiting withdrawals sent at once to reach the waiters' limit.
const WAITERS_TRIED: u64 = 128;
/// How long the waiters get to reach the server before the deposit frees them.
const WAITERS_ARRIVE: Duration = Duration::from_millis(400);

pub fn checks() -> Vec<Check> {
    vec![
        check!("limit-account-id-128-bytes", "an account id of exactly 128 bytes is accepted by OpenAccount, Deposit and GetBalance", account_128),
        check!("limit-account-id-counts-bytes", "ids are limited in bytes: 64 two-byte chars (128 B) pass, 65 (130 B) are INVALID_ARGUMENT", counts_bytes),
        check!("limit-request-id-64-bytes", "a request id of exactly 64 bytes is accepted and replayed", request_64),
        check!("limit-balance-max", "a balance may reach 2^64-1 exactly; one more is FAILED_PRECONDITION and changes nothing", balance_max),
        check!("limit-overflow-deposit", "a deposit past 2^64-1 is FAILED_PRECONDITION, takes no sequence number, records no id", overflow_deposit),
        check!("limit-message-too-large", "a 4.5 MiB request is OUT_OF_RANGE and the server keeps serving", message_too_large),
        check!("limit-waiters-exhausted", "past the waiters' limit a waiting withdrawal is RESOURCE_EXHAUSTED and takes nothing (skipped if 128 waiters fit)", waiters_exhausted),
        check!("health-serving", "grpc.health.v1 answers SERVING for bank.v1.Bank (skipped if health is not served)", health),
    ]
}

async fn account_128(cx: Cx) -> Step<()> {
    let id = padded(&cx.account(), 128);
    cx.open(&id, 5).await?;
    cx.expect(dep(&id, 5, "d"), Want::approved(10, 1)).await?;
    cx.state(&id, 10, 1).await
}

async fn counts_bytes(cx: Cx) -> Step<()> {
    let mut id = cx.account();
    if id.len() % 2 == 1 {
        id.push('x');
    }
    while id.len() < 128 {
        id.push('é');
    }
    cx.open(&id, 1).await?;
    cx.state(&id, 1, 0).await?;
    let over = format!("{id}é");
    cx.open_refused(&over, 1, &[Code::InvalidArgument]).await?;
    Ok(())
}

async fn request_64(cx: Cx) -> Step<()> {
    let a = cx.fresh(100).await?;
    let rid = "r".repeat(64);
    cx.expect(wd(&a, 10, &rid), Want::approved(90, 1)).await?;
    cx.expect(wd(&a, 10, &rid), Want::approved(90, 1).replay())
        .await?;
    cx.expect(get_op(&a, &rid), Want::approved(90, 1).replay())
        .await?;
    Ok(())
}

async fn balance_max(cx: Cx) -> Step<()> {
    let a = cx.fresh(u64::MAX - 1).await?;
    cx.expect(dep(&a, 1, "one"), Want::approved(u64::MAX, 1)).await?;
    cx.refused(dep(&a, 1, "two"), &[Code::FailedPrecondition]).await?;
    cx.state(&a, u64::MAX, 1).await
}

async fn overflow_deposit(cx: Cx) -> Step<()> {
    let a = cx.fresh(u64::MAX - 5).await?;
    cx.refused(dep(&a, 10, "big"), &[Code::FailedPrecondition])
        .await?;
    cx.state(&a, u64::MAX - 5, 0).await?;
    // The refusal recorded nothing: the id is unseen (GetOperation fences it now).
    cx.expect(get_op(&a, "big"), Want::not_applied(false)).await?;
    Ok(())
}

async fn message_too_large(cx: Cx) -> Step<()> {
    let huge = padded(&cx.account(), HUGE_MESSAGE_BYTES);
    let op = dep(&huge, 1, "");
    let sent = format!("Deposit of {} bytes ({})", HUGE_MESSAGE_BYTES, show(&op));
    let answer = send_op(cx.bank(), op, cx.shared.timeout).await;
    super::ctx::check_refused(&sent, answer, &[Code::OutOfRange])?;
    let a = cx.fresh(3).await?;
    cx.state(&a, 3, 0).await
}

/// Whether waiter `i` on `a`, whose own call got no outcome, was approved,
/// as GetOperation says (which fences it if the server never saw it).
async fn waiter_outcome(cx: &Cx, a: &str, i: usize) -> Step<bool> {
    let rid = format!("w{i}");
    let sent = format!("GetOperation of waiting Withdraw {rid} of 1 on {a}");
    match send_op_until_answered(cx.bank(), get_op(a, &rid), cx.shared.timeout).await {
        Ok(got) if got.outcome == bank::v1::Outcome::Approved as i32 => Ok(true),
        Ok(got) if got.outcome == bank::v1::Outcome::NotApplied as i32 => Ok(false),
        Ok(got) => fail(format!(
            "sent {sent}; got {}; expected APPROVED or NOT_APPLIED",
            show(&got)
        )),
        // Bounded retention: the outcome cannot be told, nor the final state checked.
        Err(s) if s.code() == Code::FailedPrecondition => Err(Stop::Skip(format!(
            "sent {sent}; got {}: the server forgot the id, so the waiters' count cannot be checked",
            show_status(&s)
        ))),
        Err(s) => fail(format!(
            "sent {sent}; got {}; expected an answer",
            show_status(&s)
        )),
    }
}

async fn waiters_exhausted(cx: Cx) -> Step<()> {
    let a = cx.fresh(0).await?;
    let handles: Vec<_> = (0..WAITERS_TRIED)
        .map(|i| {
            tokio::spawn(send_op(
                cx.bank(),
                wd_wait(&a, 1, &format!("w{i}")),
                cx.shared.timeout,
            ))
        })
        .collect();
    tokio::time::sleep(WAITERS_ARRIVE).await;
    cx.expect(dep(&a, WAITERS_TRIED, "d"), Want::approved(WAITERS_TRIED, 1))
        .await?;
    let (mut approved, mut refused) = (0u64, Vec::new());
    for (i, handle) in handles.into_iter().enumerate() {
        let sent = format!("waiting Withdraw w{i} of 1 on {a}");
        match handle.await {
            Ok(Ok(got)) if got.outcome == bank::v1::Outcome::Approved as i32 => approved += 1,
            Ok(Err(s)) if s.code() == Code::ResourceExhausted => refused.push(i),
            // Failed or answered late (a fault of the moment): its outcome is
            // what GetOperation says.
            Ok(Err(s)) if is_retryable(s.code()) => approved += u64::from(waiter_outcome(&cx, &a, i).await?),
            Ok(Ok(got)) => {
                return fail(format!(
                    "sent {sent}; got {}; expected APPROVED or RESOURCE_EXHAUSTED",
                    show(&got)
                ))
            }
            Ok(Err(s)) => {
                return fail(format!(
                    "sent {sent}; got {}; expected APPROVED or RESOURCE_EXHAUSTED",
                    show_status(&s)
                ))
            }
            Err(e) => return fail(format!("sent {sent}; its task failed: {e}")),
        }
    }
    cx.state(&a, WAITERS_TRIED - approved, 1 + approved).await?;
    let Some(first) = refused.first() else {
        return Err(Stop::Skip(format!(
            "{WAITERS_TRIED} waiting withdrawals on one account all fit"
        )));
    };
    cx.expect(get_op(&a, &format!("w{first}")), Want::not_applied(false))
        .await?;
    Ok(())
}

async fn health(cx: Cx) -> Step<()> {
    let mut client = HealthClient::new(cx.shared.channel.clone());
    let message = HealthCheckRequest {
        service: "bank.v1.Bank".into(),
    };
    match client.check(cx.req(message)).await {
        Ok(answer) => {
            let status = answer.into_inner().status;
            ensure(status == ServingStatus::Serving as i32, || {
                format!("sent grpc.health.v1.Health/Check {{ service: \"bank.v1.Bank\" }}; got status {status}; expected SERVING (1)")
            })
        }
        Err(s) if s.code() == Code::Unimplemented => Err(Stop::Skip("grpc.health.v1 is not served".into())),
        Err(s) => fail(format!(
            "sent grpc.health.v1.Health/Check {{ service: \"bank.v1.Bank\" }}; got {}; expected SERVING",
            show_status(&s)
        )),
    }
}
