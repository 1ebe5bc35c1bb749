//! The ledger's calls for a withdrawal that may wait for funds: start it
//! (answered, or parked as a [`Waiter`]), resume it once woken or its wait
//! is over, or end it when its caller is gone. A parked withdrawal holds no
//! thread: the service awaits its waiter as a future. The blocking
//! [`Ledger::withdraw`] (tests, in-process callers) sleeps on it instead.

use super::account::Account;
use super::context::CallContext;
use super::error::{LedgerError, LedgerResult};
use super::op::{Attempt, OpResult, Withdrawal};
use super::pending::Pending;
use super::waiters::{WaitAttempt, Waiter};
use super::Ledger;

impl Ledger {
    /// A withdrawal that parks instead of waiting for funds (on any
    /// context): answered, `WouldBlock` (nothing changed), or `Wait` with
    /// its waiter registered. Refused with `LimitReached` (nothing changed,
    /// the request id still unseen) when a waiter limit is full.
    pub fn withdraw_or_wait(
        &self,
        account: &Account,
        w: &Withdrawal,
        ctx: &mut CallContext,
    ) -> LedgerResult<WaitAttempt> {
        w.validate()?;
        debug_assert_eq!(&**account.id(), w.account_id);
        let attempt = account.withdraw(w, ctx, &self.config, (&self.waiters, true));
        self.trim_request_ids();
        attempt
    }

    /// Re-checks a parked withdrawal under the lock, once its waiter was
    /// woken or its wait is over: answered, or `Wait` again. Blocks.
    pub fn resume_withdrawal(
        &self,
        account: &Account,
        w: &Withdrawal,
        waiter: Waiter,
        ctx: &CallContext,
    ) -> LedgerResult<WaitAttempt> {
        let attempt = account.resume_withdrawal(w, waiter, ctx, &self.config);
        self.trim_request_ids();
        attempt
    }

    /// Ends a parked withdrawal whose caller is gone: deregistered, and its
    /// request id recorded as not applied. Blocks.
    pub fn abandon_waiter(
        &self,
        account: &Account,
        w: &Withdrawal,
        waiter: Waiter,
    ) -> LedgerResult<Pending<OpResult>> {
        let result = account.abandon_waiter(w, waiter, &self.config);
        self.trim_request_ids();
        result
    }

    /// Withdrawals waiting for funds now, over all accounts.
    pub fn waiting_withdrawals(&self) -> usize {
        self.waiters.waiting()
    }

    /// [`Ledger::try_withdraw`]'s body: on a context that may block, a
    /// parked withdrawal sleeps on its waiter here until it is answered; on
    /// one that may not, a wait is `WouldBlock` as any other.
    pub(super) fn withdraw_here(
        &self,
        account: &Account,
        w: &Withdrawal,
        ctx: &mut CallContext,
    ) -> LedgerResult<Attempt<Pending<OpResult>>> {
        let park = ctx.may_block();
        let mut attempt = account.withdraw(w, ctx, &self.config, (&self.waiters, park))?;
        loop {
            match attempt {
                WaitAttempt::Done(result) => return Ok(Attempt::Done(result)),
                WaitAttempt::WouldBlock => return Ok(Attempt::WouldBlock),
                WaitAttempt::Wait(waiter) if park => {
                    waiter.block(ctx);
                    attempt = account.resume_withdrawal(w, waiter, ctx, &self.config)?;
                }
                WaitAttempt::Wait(waiter) => {
                    // Not reached: without `park` no waiter is registered.
                    let _ = self.abandon_waiter(account, w, waiter);
                    return Err(LedgerError::Internal(
                        "a withdrawal parked on a context that may not block".into(),
                    ));
                }
            }
        }
    }
}
