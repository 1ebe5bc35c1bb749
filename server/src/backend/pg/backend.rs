//! The PostgreSQL ledger (`--database-url`) as a [`Backend`]: an admitted op
//! that needs one round trip (no delay, no zoo, no wait for funds) queues
//! on the lane (`lane.rs`), the ops of every account gathered into few
//! calls; any other runs its transaction where it may block: on the
//! account's runner (deposits and withdrawals, batched with `--batch-max`),
//! or on a blocking-pool thread of its own (waits for funds, transfers, the
//! zoo's race). Async workers never touch the database; an account is looked up
//! in the database once per server (then it is known here).

use std::sync::Arc;

use futures::future::BoxFuture;

use super::funds::WakeOnDrop;
use super::one_trip::{TripOp, DEPOSIT, WITHDRAW};
use super::PgLedger;
use crate::backend::api::{AccountRef, Backend, BackendState};
use crate::backend::ledger::{
    BatchOp, CallContext, Deposit, LedgerConfig, LedgerResult, OpResult, Pending, Snapshot, Transfer,
    Withdrawal,
};
use crate::backend::runner::{blocking, run_batched, run_on, BatchApply, Runner};

impl Backend for PgLedger {
    fn config(&self) -> &LedgerConfig {
        PgLedger::config(self)
    }

    fn account_now(&self, id: &str) -> Option<LedgerResult<AccountRef>> {
        self.known(id).map(Ok)
    }

    fn account_blocking(&self, id: &str) -> LedgerResult<AccountRef> {
        PgLedger::account(self, id)
    }

    fn open(
        self: Arc<Self>,
        id: String,
        balance: u64,
        owner: Option<String>,
    ) -> BoxFuture<'static, LedgerResult<Snapshot>> {
        Box::pin(blocking(move || {
            PgLedger::open_account(&self, &id, balance, owner.as_deref())
        }))
    }

    fn withdraw(
        self: Arc<Self>,
        account: AccountRef,
        runner: Arc<dyn Runner>,
        w: Withdrawal,
        mut ctx: CallContext,
    ) -> BoxFuture<'static, LedgerResult<OpResult>> {
        Box::pin(async move {
            // A wait for funds must not hold up the runner; the race demo
            // needs its withdrawals side by side, not in a row.
            if w.wait_for_funds || PgLedger::config(&self).racy_withdrawals() {
                let abandoned = ctx.abandoned_flag();
                let mut wake = WakeOnDrop::new(Arc::clone(&self.funds), w.account_id.clone(), abandoned);
                let answer = blocking(move || PgLedger::withdraw(&self, &w, &mut ctx)).await;
                wake.disarm();
                return answer;
            }
            if lane_allowed(&self, &ctx) {
                w.validate()?;
                let op = TripOp::single(&w.account_id, &w.request_id, (WITHDRAW, w.amount), false, &ctx);
                if let Some(answer) = self.on_lane(op).await {
                    return answer;
                }
            }
            if self.batching() {
                let applier = Arc::new(PgBatch {
                    db: self,
                    id: Arc::clone(account.id()),
                });
                return run_batched(&*runner, applier, BatchOp::Withdraw(w), ctx).await;
            }
            run_on(&*runner, move || PgLedger::withdraw(&self, &w, &mut ctx)).await
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
            if lane_allowed(&self, &ctx) {
                d.validate()?;
                let op = TripOp::single(&d.account_id, &d.request_id, (DEPOSIT, d.amount), false, &ctx);
                if let Some(answer) = self.on_lane(op).await {
                    return answer;
                }
            }
            if self.batching() {
                let applier = Arc::new(PgBatch {
                    db: self,
                    id: Arc::clone(account.id()),
                });
                return run_batched(&*runner, applier, BatchOp::Deposit(d), ctx).await;
            }
            run_on(&*runner, move || PgLedger::deposit(&self, &d, &ctx)).await
        })
    }

    fn transfer(
        self: Arc<Self>,
        _from: AccountRef,
        _to: AccountRef,
        t: Transfer,
        ctx: CallContext,
    ) -> BoxFuture<'static, LedgerResult<OpResult>> {
        Box::pin(async move {
            if lane_allowed(&self, &ctx) {
                t.validate()?;
                if let Some(answer) = self.on_lane(TripOp::transfer(&t, &ctx)).await {
                    return answer;
                }
            }
            blocking(move || PgLedger::transfer(&self, &t, &ctx)).await
        })
    }

    /// Every read is a database round trip.
    fn balance_now(&self, _account: &AccountRef) -> Option<Snapshot> {
        None
    }

    fn balance_blocking(&self, account: &AccountRef) -> LedgerResult<Snapshot> {
        PgLedger::balance(self, account.id())
    }

    fn operation(&self, account: &AccountRef, request_id: &str) -> LedgerResult<OpResult> {
        PgLedger::operation(self, account.id(), request_id)
    }

    fn state(&self) -> BackendState {
        self.sampled_state()
    }
}

/// Whether an op may go on the one-trip lane (`lane.rs`): one round trip
/// is allowed for it, and no `--batch-max` (whose batches are formed by the
/// account's runner).
fn lane_allowed(db: &PgLedger, ctx: &CallContext) -> bool {
    !db.batching() && db.one_trip_allowed(ctx)
}

/// A batch of one account's ops, applied as one database transaction.
struct PgBatch {
    db: Arc<PgLedger>,
    id: Arc<str>,
}

impl BatchApply for PgBatch {
    fn apply(&self, ops: &mut [(BatchOp, CallContext)]) -> Vec<LedgerResult<Pending<OpResult>>> {
        let answers = self.db.run_batch(&self.id, ops);
        answers.into_iter().map(|r| r.map(Pending::ready)).collect()
    }
}
