//! A withdrawal that waits for funds, as a future: it never holds a thread
//! while it waits. Each step that takes the account's lock (the first try,
//! and each re-check once woken or timed out) runs like any single-account
//! op: on the async worker when nothing can block, else on the account's
//! runner (see [`super::runner`]); in between, the parked withdrawal is only
//! its ledger [`Waiter`], awaited here next to a timer for the end of its
//! wait. Its admission slot was given back when it parked.
//!
//! If the call goes away while parked (client gone, stream closed), the
//! [`Parked`] guard is dropped wherever it is (this future, a queued runner
//! job, an undelivered answer), and its drop ends the wait on the runner:
//! the waiter is deregistered and the request id recorded as not applied,
//! as for any abandoned op. No waiter outlives its call.

use std::sync::Arc;

use super::runner::{run_on, Runner};
use crate::backend::ledger::{
    Account, CallContext, Ledger, LedgerError, LedgerResult, OpResult, Pending, WaitAttempt, Waiter,
    Withdrawal,
};

/// What every step of one waiting withdrawal needs.
#[derive(Clone)]
struct Job {
    ledger: Arc<Ledger>,
    account: Arc<Account>,
    runner: Arc<dyn Runner>,
    w: Arc<Withdrawal>,
}

/// A parked withdrawal owned by the service; ended if dropped unresumed.
struct Parked {
    job: Job,
    waiter: Option<Waiter>,
}

/// What a step came to.
enum Next {
    Done(Pending<OpResult>),
    Park(Parked),
}

/// A withdrawal with `wait_for_funds`, admitted (`ctx` holds the admission),
/// end to end: answered once its record is synced, however long it waited.
pub async fn withdraw(
    (ledger, account, runner): (Arc<Ledger>, Arc<Account>, Arc<dyn Runner>),
    w: Withdrawal,
    mut ctx: CallContext,
) -> LedgerResult<OpResult> {
    let job = Job {
        ledger,
        account,
        runner,
        w: Arc::new(w),
    };
    ctx.set_may_block(false);
    let first = job.ledger.withdraw_or_wait(&job.account, &job.w, &mut ctx)?;
    ctx.set_may_block(true);
    let mut next = match first {
        WaitAttempt::WouldBlock => {
            let (next, back) = job.on_runner(ctx, None).await?;
            ctx = back;
            next
        }
        attempt => job.next(attempt)?,
    };
    loop {
        let parked = match next {
            Next::Done(pending) => return pending.settled().await,
            Next::Park(parked) => parked,
        };
        parked.wait().await;
        let (after, back) = job.on_runner(ctx, Some(parked)).await?;
        (next, ctx) = (after, back);
    }
}

impl Job {
    fn next(&self, attempt: WaitAttempt) -> LedgerResult<Next> {
        match attempt {
            WaitAttempt::Done(pending) => Ok(Next::Done(pending)),
            WaitAttempt::Wait(waiter) => Ok(Next::Park(Parked {
                job: self.clone(),
                waiter: Some(waiter),
            })),
            WaitAttempt::WouldBlock => Err(LedgerError::Internal(
                "a withdrawal would block on a thread that may block".into(),
            )),
        }
    }

    /// One step on the account's runner: the first try (`parked` none) or
    /// the re-check of a parked withdrawal. `ctx` comes back with the result.
    async fn on_runner(&self, ctx: CallContext, parked: Option<Parked>) -> LedgerResult<(Next, CallContext)> {
        let job = self.clone();
        run_on(&*self.runner, move || {
            let mut ctx = ctx;
            let attempt = match parked.and_then(Parked::take) {
                None => job.ledger.withdraw_or_wait(&job.account, &job.w, &mut ctx)?,
                Some(waiter) => job.ledger.resume_withdrawal(&job.account, &job.w, waiter, &ctx)?,
            };
            Ok((job.next(attempt)?, ctx))
        })
        .await
    }
}

impl Parked {
    /// Waits, holding no thread, until woken by funds or the wait's end.
    async fn wait(&self) {
        let Some(waiter) = &self.waiter else { return };
        let until = tokio::time::Instant::from_std(waiter.until());
        tokio::select! {
            () = waiter.woken() => {}
            () = tokio::time::sleep_until(until) => {}
        }
    }

    /// The waiter, to resume; the guard is disarmed.
    fn take(mut self) -> Option<Waiter> {
        self.waiter.take()
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        let Some(waiter) = self.waiter.take() else {
            return;
        };
        // Without a runtime (process teardown) nobody is left to ask for the id.
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let job = self.job.clone();
        self.job.runner.submit(Box::new(move || {
            if let Err(e) = job.ledger.abandon_waiter(&job.account, &job.w, waiter) {
                tracing::warn!(account = %job.w.account_id, request_id = %job.w.request_id,
                    "ending an abandoned wait for funds failed: {e}");
            }
        }));
    }
}
