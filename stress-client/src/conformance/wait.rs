//! Withdrawals that wait for funds, `wait-*`: served by a later deposit or
//! incoming transfer (taking the number after it), approved at once when
//! the funds are there, given up at the call's deadline (answered
//! INSUFFICIENT_FUNDS, or cut by the client's DEADLINE_EXCEEDED, after which
//! GetOperation tells which), and ABORTED only for a copy of a request id
//! whose withdrawal is still waiting, never once it is done.

use std::time::{Duration, Instant};

use bank::v1 as pb;
use tokio::task::JoinHandle;
use tonic::{Code, Status};

use super::ctx::{
    check_answer, dep, ensure, fail, get_op, is_retryable, send_op, show, show_status, wd_wait, xfer,
};
use super::ctx::{Cx, Op, Step, Want};
use super::{check, Check};

/// How long a check lets a waiting withdrawal reach the server before it
/// acts on it. Were it too short the op would find the funds at once and
/// still be approved: the checks stay right, they only test less.
const REACH_SERVER: Duration = Duration::from_millis(300);
/// The deadline of a withdrawal left to give up.
const GIVE_UP_AFTER: Duration = Duration::from_millis(600);
/// How long GetOperation is retried while it answers ABORTED (still waiting).
const FINAL_OUTCOME_WAIT: Duration = Duration::from_secs(3);

pub fn checks() -> Vec<Check> {
    vec![
        check!("wait-served-by-deposit", "a waiting withdrawal is approved by a later deposit and takes the number after it", by_deposit),
        check!("wait-served-by-transfer", "a waiting withdrawal is approved by an incoming transfer", by_transfer),
        check!("wait-funded-at-once", "with the funds there, a waiting withdrawal is approved at once (sequence 1)", funded),
        check!("wait-deadline-gives-up", "unfunded, it waits until its deadline, then gives up: INSUFFICIENT_FUNDS, or NOT_APPLIED / cut by the deadline (GetOperation agrees)", deadline),
        check!("wait-duplicate-aborted", "a copy of a still-waiting withdrawal (Withdraw or GetOperation of its id) is ABORTED; once served, a replay", duplicate_aborted),
        check!("wait-conflict-while-waiting", "the id of a waiting withdrawal reused with another amount is ALREADY_EXISTS", conflict_while_waiting),
    ]
}

/// A call sent in the background.
type Waiting = JoinHandle<Result<pb::OperationResult, Status>>;

/// Sends `op` in the background with deadline `timeout`.
fn spawn(cx: &Cx, op: Op, timeout: Duration) -> Waiting {
    tokio::spawn(send_op(cx.bank(), op, timeout))
}

/// The answer of a spawned call.
async fn joined(
    sent: &str,
    handle: JoinHandle<Result<pb::OperationResult, Status>>,
) -> Step<Result<pb::OperationResult, Status>> {
    match handle.await {
        Ok(answer) => Ok(answer),
        Err(e) => fail(format!("sent {sent}; the call's task failed: {e}")),
    }
}

/// `step`, unless it failed after the waiting call had already ended on a
/// retryable status (failed before applying, shed): then the waiter never
/// waited, the step's expectation rested on it, and that status is the
/// failure, so the check runs again (see `run_one` in the module root).
async fn unless_waiter_faulted<T>(step: Step<T>, sent: &str, waiting: &mut Waiting) -> Step<T> {
    if step.is_ok() || !waiting.is_finished() {
        return step;
    }
    match waiting.await {
        Ok(Err(s)) if is_retryable(s.code()) => fail(format!(
            "sent {sent}; got {}; expected it to wait",
            show_status(&s)
        )),
        _ => step,
    }
}

async fn by_deposit(cx: Cx) -> Step<()> {
    let a = cx.fresh(10).await?;
    let op = wd_wait(&a, 50, "w");
    let sent = show(&op);
    let waiting = spawn(&cx, op, cx.shared.timeout);
    tokio::time::sleep(REACH_SERVER).await;
    cx.expect(dep(&a, 100, "d"), Want::approved(110, 1)).await?;
    check_answer(&sent, joined(&sent, waiting).await?, &Want::approved(60, 2))?;
    cx.state(&a, 60, 2).await
}

async fn by_transfer(cx: Cx) -> Step<()> {
    let (a, b) = (cx.fresh(0).await?, cx.fresh(100).await?);
    let op = wd_wait(&a, 30, "w");
    let sent = show(&op);
    let waiting = spawn(&cx, op, cx.shared.timeout);
    tokio::time::sleep(REACH_SERVER).await;
    cx.expect(xfer(&b, &a, 50, "t"), Want::approved(50, 1).to(50, 1))
        .await?;
    check_answer(&sent, joined(&sent, waiting).await?, &Want::approved(20, 2))?;
    cx.state(&a, 20, 2).await
}

async fn funded(cx: Cx) -> Step<()> {
    let a = cx.fresh(100).await?;
    cx.expect(wd_wait(&a, 30, "w"), Want::approved(70, 1)).await?;
    cx.state(&a, 70, 1).await
}

async fn deadline(cx: Cx) -> Step<()> {
    let a = cx.fresh(10).await?;
    let op = wd_wait(&a, 50, "w");
    let sent = format!("{} with a {GIVE_UP_AFTER:?} deadline", show(&op));
    let started = Instant::now();
    let answer = cx.send_as(&cx.bank(), op, GIVE_UP_AFTER).await;
    let waited = started.elapsed();
    match answer {
        Ok(got) => {
            ensure(waited >= GIVE_UP_AFTER / 2, || {
                format!(
                    "sent {sent}; answered {} after {waited:?}: it did not wait",
                    show(&got)
                )
            })?;
            // Given up at the deadline: denied (a number taken), or, when the
            // deadline passed before it took the lock again, not applied.
            let denied = got.outcome != pb::Outcome::NotApplied as i32;
            let want = if denied {
                Want::denied(10, 1)
            } else {
                Want::not_applied(false)
            };
            check_answer(&sent, Ok(got), &want)?;
            final_after_deadline(&cx, &a, Some(denied)).await
        }
        // The client's deadline cut the call (tonic says CANCELLED, others DEADLINE_EXCEEDED).
        Err(status) if matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled) => {
            final_after_deadline(&cx, &a, None).await
        }
        Err(status) => fail(format!(
            "sent {sent}; got {}; expected OUTCOME_INSUFFICIENT_FUNDS, DeadlineExceeded or Cancelled",
            show_status(&status)
        )),
    }
}

/// After the deadline: GetOperation says denied (it took a number) or
/// NOT_APPLIED (it took none), as the answer said if there was one, and
/// GetBalance agrees.
async fn final_after_deadline(cx: &Cx, a: &str, answered_denied: Option<bool>) -> Step<()> {
    let got = final_outcome(cx, a, "w").await?;
    let denied = got.outcome != pb::Outcome::NotApplied as i32;
    ensure(answered_denied.is_none_or(|d| d == denied), || {
        format!(
            "GetOperation of the withdrawal that gave up answered {}, not what the withdrawal answered",
            show(&got)
        )
    })?;
    let sent = format!("GetOperation {{ account_id: {a:?}, request_id: \"w\" }}");
    if !denied {
        check_answer(&sent, Ok(got), &Want::not_applied(true))?;
        return cx.state(a, 10, 0).await;
    }
    check_answer(&sent, Ok(got), &Want::denied(10, 1).replay())?;
    cx.state(a, 10, 1).await
}

/// GetOperation of `rid` on `a`, asked again while it is ABORTED (still waiting).
async fn final_outcome(cx: &Cx, a: &str, rid: &str) -> Step<pb::OperationResult> {
    let started = Instant::now();
    loop {
        match cx.send(get_op(a, rid)).await {
            Err(s) if s.code() == Code::Aborted && started.elapsed() < FINAL_OUTCOME_WAIT => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answer => return super::ctx::expect_ok(&show(&get_op(a, rid)), answer),
        }
    }
}

async fn duplicate_aborted(cx: Cx) -> Step<()> {
    let a = cx.fresh(10).await?;
    let op = wd_wait(&a, 50, "w");
    let sent = show(&op);
    let mut waiting = spawn(&cx, op.clone(), cx.shared.timeout);
    tokio::time::sleep(REACH_SERVER).await;
    let copy = cx.refused(op.clone(), &[Code::Aborted]).await;
    unless_waiter_faulted(copy, &sent, &mut waiting).await?;
    let asked = cx.refused(get_op(&a, "w"), &[Code::Aborted]).await;
    unless_waiter_faulted(asked, &sent, &mut waiting).await?;
    cx.expect(dep(&a, 100, "d"), Want::approved(110, 1)).await?;
    check_answer(&sent, joined(&sent, waiting).await?, &Want::approved(60, 2))?;
    cx.expect(op, Want::approved(60, 2).replay()).await?;
    cx.expect(get_op(&a, "w"), Want::approved(60, 2).replay()).await?;
    cx.state(&a, 60, 2).await
}

async fn conflict_while_waiting(cx: Cx) -> Step<()> {
    let a = cx.fresh(10).await?;
    let op = wd_wait(&a, 50, "w");
    let sent = show(&op);
    let mut waiting = spawn(&cx, op, cx.shared.timeout);
    tokio::time::sleep(REACH_SERVER).await;
    let conflict = cx.refused(wd_wait(&a, 51, "w"), &[Code::AlreadyExists]).await;
    unless_waiter_faulted(conflict, &sent, &mut waiting).await?;
    cx.expect(dep(&a, 40, "d"), Want::approved(50, 1)).await?;
    check_answer(&sent, joined(&sent, waiting).await?, &Want::approved(0, 2))?;
    cx.state(&a, 0, 2).await
}
