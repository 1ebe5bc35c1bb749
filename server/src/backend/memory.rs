//! The in-memory ledger (with or without the journal of `--data-dir`) as a
//! [`Backend`]. An admitted op is first tried right here, on the async
//! worker, with a context that may not block: the ledger then only takes a
//! lock that is free now and only when nothing can sleep under it (zero
//! delay, no wait for funds). If it would block, the ledger changed nothing
//! and said so: the op runs again where it may block, on the account's
//! runner or, for ops that lock two accounts, on a blocking-pool thread of
//! its own. A withdrawal that waits for funds parks as a future between its
//! steps (see [`super::parked`]): no thread waits for money.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::api::{AccountRef, Backend, BackendState};
use super::ledger::{
    Account, Attempt, BatchOp, CallContext, Deposit, Ledger, LedgerConfig, LedgerError, LedgerResult,
    OpResult, Pending, Snapshot, Transfer, Withdrawal,
};
use super::runner::{blocking, run_batched, run_on, BatchApply, Runner};

/// The ledger's account behind `account` (made by this backend).
fn account_of(account: &AccountRef) -> LedgerResult<Arc<Account>> {
    account
        .handle::<Account>()
        .ok_or_else(|| LedgerError::Internal("an account ref of another backend".into()))
}

fn account_ref(account: Arc<Account>) -> AccountRef {
    let (id, owner) = (Arc::clone(account.id()), account.owner().cloned());
    AccountRef::new(id, owner, Some(account))
}

impl Backend for Ledger {
    fn config(&self) -> &LedgerConfig {
        Ledger::config(self)
    }

    fn account_now(&self, id: &str) -> Option<LedgerResult<AccountRef>> {
        Some(Ledger::account(self, id).map(account_ref))
    }

    fn account_blocking(&self, id: &str) -> LedgerResult<AccountRef> {
        Ledger::account(self, id).map(account_ref)
    }

    /// Durable storage syncs before it answers, so then it runs on the
    /// blocking pool; in memory, right here.
    fn open(
        self: Arc<Self>,
        id: String,
        balance: u64,
        owner: Option<String>,
    ) -> BoxFuture<'static, LedgerResult<Snapshot>> {
        Box::pin(async move {
            if !Ledger::config(&self).storage.is_durable() {
                return Ledger::open_owned(&self, &id, balance, owner.as_deref());
            }
            blocking(move || Ledger::open_owned(&self, &id, balance, owner.as_deref())).await
        })
    }

    fn withdraw(
        self: Arc<Self>,
        account: AccountRef,
        runner: Arc<dyn Runner>,
        w: Withdrawal,
        ctx: CallContext,
    ) -> BoxFuture<'static, LedgerResult<OpResult>> {
        Box::pin(async move {
            let account = account_of(&account)?;
            let racy = Ledger::config(&self).racy_withdrawals();
            if w.wait_for_funds && !racy {
                return super::parked::withdraw((self, account, runner), w, ctx).await;
            }
            // The race demo needs its withdrawals side by side, not in a row.
            if self.batching() {
                return settle_batched(ctx, runner, self, account, BatchOp::Withdraw(w)).await;
            }
            let runner = (!racy).then_some(runner);
            settle(ctx, runner, move |ctx| self.try_withdraw(&account, &w, ctx)).await
        })
    }

    fn deposit(
        self: Arc<Self>,
        account: AccountRef,
        runner: Arc<dyn Runner>,
        d: Deposit,
        ctx: CallContext,
    ) -> BoxFuture<'static, LedgerResult<OpResult>> {
        Box::pin(async move {
            let account = account_of(&account)?;
            if self.batching() {
                return settle_batched(ctx, runner, self, account, BatchOp::Deposit(d)).await;
            }
            settle(ctx, Some(runner), move |ctx| self.try_deposit(&account, &d, ctx)).await
        })
    }

    fn transfer(
        self: Arc<Self>,
        from: AccountRef,
        to: AccountRef,
        t: Transfer,
        ctx: CallContext,
    ) -> BoxFuture<'static, LedgerResult<OpResult>> {
        Box::pin(async move {
            let (from, to) = (account_of(&from)?, account_of(&to)?);
            settle(ctx, None, move |ctx| self.try_transfer(&from, &to, &t, ctx)).await
        })
    }

    /// A read never sleeps under the lock, so a free lock is read right here.
    fn balance_now(&self, account: &AccountRef) -> Option<Snapshot> {
        self.try_balance(&*account.handle::<Account>()?)
    }

    fn balance_blocking(&self, account: &AccountRef) -> LedgerResult<Snapshot> {
        Ok(Ledger::balance(self, &*account_of(account)?))
    }

    fn operation(&self, account: &AccountRef, request_id: &str) -> LedgerResult<OpResult> {
        Ledger::operation(self, &*account_of(account)?, request_id)
    }

    fn state(&self) -> BackendState {
        BackendState {
            open_accounts: self.account_count(),
            remembered_request_ids: self.remembered_request_ids(),
            waiting_withdrawals: self.waiting_withdrawals(),
            db_pool: None,
        }
    }
}

/// Runs an admitted op: first here, with a context that may not block; if
/// it would block, again on `runner` if given, else on a blocking-pool
/// thread of its own. The admission (held by `ctx`) is given back when the
/// op is done.
async fn settle<F>(mut ctx: CallContext, runner: Option<Arc<dyn Runner>>, mut op: F) -> LedgerResult<OpResult>
where
    F: FnMut(&mut CallContext) -> LedgerResult<Attempt<Pending<OpResult>>> + Send + 'static,
{
    ctx.set_may_block(false);
    if let Attempt::Done(result) = op(&mut ctx)? {
        return result.settled().await;
    }
    ctx.set_may_block(true);
    let op = move || match op(&mut ctx)? {
        Attempt::Done(result) => Ok(result),
        Attempt::WouldBlock => Err(LedgerError::Internal(
            "an op would block on a thread that may block".into(),
        )),
    };
    // The sync is awaited here, with the runner or the thread free again.
    let pending = match runner {
        Some(runner) => run_on(&*runner, op).await?,
        None => blocking(op).await?,
    };
    pending.settled().await
}

/// [`settle`] for a batchable op: tried here first as ever; if it would
/// block, queued on the account's runner, which applies it in a batch.
async fn settle_batched(
    mut ctx: CallContext,
    runner: Arc<dyn Runner>,
    ledger: Arc<Ledger>,
    account: Arc<Account>,
    op: BatchOp,
) -> LedgerResult<OpResult> {
    ctx.set_may_block(false);
    let attempt = match &op {
        BatchOp::Deposit(d) => ledger.try_deposit(&account, d, &ctx)?,
        BatchOp::Withdraw(w) => ledger.try_withdraw(&account, w, &mut ctx)?,
    };
    if let Attempt::Done(result) = attempt {
        return result.settled().await;
    }
    ctx.set_may_block(true);
    let applier = Arc::new(AccountBatch { ledger, account });
    run_batched(&*runner, applier, op, ctx).await
}

/// A batch of one account's ops, applied under one lock hold, one delay and one sync.
struct AccountBatch {
    ledger: Arc<Ledger>,
    account: Arc<Account>,
}

impl BatchApply for AccountBatch {
    fn apply(&self, ops: &mut [(BatchOp, CallContext)]) -> Vec<LedgerResult<Pending<OpResult>>> {
        self.ledger.run_batch(&self.account, ops)
    }
}
