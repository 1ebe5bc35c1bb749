//! The async path of every call when the ledger lives in PostgreSQL
//! (`--database-url`): validate, make sure the account exists (asked of the
//! database once per server and account, on a blocking thread), pass the
//! account's gate, then run the op's transaction where it may block: on the
//! account's runner (deposits and withdrawals, batched with `--batch-max`),
//! or on a blocking-pool thread of its own (waits for funds, transfers,
//! reads, GetOperation, the zoo's race). Async workers never touch the
//! database.

use std::sync::Arc;

use crate::rpc::call::Call;
use crate::admission::gate::{BatchApply, Gate};
use crate::backend::ledger::{
    validate_account_id, BatchOp, CallContext, Deposit, InjectedBug, LedgerResult, OpResult, Snapshot,
    Transfer, Withdrawal,
};
use crate::admission::ops::{blocking, Ops};
use crate::backend::pg::PgLedger;

/// `OpenAccount` in the database.
pub async fn open(
    db: &Arc<PgLedger>,
    id: String,
    balance: u64,
    owner: Option<String>,
) -> LedgerResult<Snapshot> {
    let db = Arc::clone(db);
    blocking(move || db.open_account(&id, balance, owner.as_deref())).await
}

/// The account's id once it is known to exist (a database look the first time).
async fn known(db: &Arc<PgLedger>, id: &str) -> LedgerResult<Arc<str>> {
    validate_account_id(id)?;
    if !db.knows(id) {
        let (db, owned) = (Arc::clone(db), id.to_owned());
        blocking(move || db.account(&owned)).await?;
    }
    Ok(Arc::from(id))
}

/// Admits a call on `id`'s gate and builds its context.
async fn admitted(ops: &Ops, id: &Arc<str>, call: &Call) -> LedgerResult<(Arc<Gate>, CallContext)> {
    let gate = ops.gates().of(id);
    let admission = gate.admit().await?;
    Ok((gate, call.context(Box::new(move || drop(admission)))))
}

/// A withdrawal.
pub async fn withdraw(ops: &Ops, db: &Arc<PgLedger>, w: Withdrawal, call: &Call) -> LedgerResult<OpResult> {
    w.validate()?;
    let id = known(db, &w.account_id).await?;
    let (gate, mut ctx) = admitted(ops, &id, call).await?;
    let db = Arc::clone(db);
    // A wait for funds must not hold up the runner; the race demo needs its
    // withdrawals side by side, not in a row.
    if w.wait_for_funds || db.config().racy_withdrawals() {
        return blocking(move || db.withdraw(&w, &mut ctx)).await;
    }
    if batching(&db) {
        return run_batched(&gate, db, id, BatchOp::Withdraw(w), ctx).await;
    }
    gate.run(move || db.withdraw(&w, &mut ctx)).await
}

/// A deposit.
pub async fn deposit(ops: &Ops, db: &Arc<PgLedger>, d: Deposit, call: &Call) -> LedgerResult<OpResult> {
    d.validate()?;
    let id = known(db, &d.account_id).await?;
    let (gate, ctx) = admitted(ops, &id, call).await?;
    let db = Arc::clone(db);
    if batching(&db) {
        return run_batched(&gate, db, id, BatchOp::Deposit(d), ctx).await;
    }
    gate.run(move || db.deposit(&d, &ctx)).await
}

/// A transfer: both gates are passed in id order, like the locks.
pub async fn transfer(ops: &Ops, db: &Arc<PgLedger>, t: Transfer, call: &Call) -> LedgerResult<OpResult> {
    t.validate()?;
    let from = known(db, &t.from_account_id).await?;
    let to = known(db, &t.to_account_id).await?;
    let (first, second) = if from < to { (from, to) } else { (to, from) };
    let a = ops.gates().of(&first).admit().await?;
    let b = ops.gates().of(&second).admit().await?;
    let ctx = call.context(Box::new(move || drop((a, b))));
    let db = Arc::clone(db);
    blocking(move || db.transfer(&t, &ctx)).await
}

/// `GetBalance`: the committed state, read on a blocking thread after the gate.
pub async fn balance(ops: &Ops, db: &Arc<PgLedger>, account_id: &str) -> LedgerResult<Snapshot> {
    let id = known(db, account_id).await?;
    let admission = ops.gates().of(&id).admit().await?;
    let db = Arc::clone(db);
    blocking(move || {
        let _admitted = admission;
        db.balance(&id)
    })
    .await
}

/// `GetOperation`: the stored result, fencing an unseen id in the database.
pub async fn operation(
    ops: &Ops,
    db: &Arc<PgLedger>,
    account_id: String,
    request_id: String,
) -> LedgerResult<OpResult> {
    let id = known(db, &account_id).await?;
    let admission = ops.gates().of(&id).admit().await?;
    let db = Arc::clone(db);
    blocking(move || {
        let _admitted = admission;
        db.operation(&id, &request_id)
    })
    .await
}

/// Whether deposits and withdrawals go to the runner in batches.
fn batching(db: &PgLedger) -> bool {
    let config = db.config();
    config.batch_max > 1 && !config.racy_withdrawals() && config.inject_bug == InjectedBug::None
}

/// Runs one batchable op on the account's runner, in one transaction with
/// the ops queued beside it.
async fn run_batched(
    gate: &Gate,
    db: Arc<PgLedger>,
    id: Arc<str>,
    op: BatchOp,
    ctx: CallContext,
) -> LedgerResult<OpResult> {
    gate.run_batched_with(Arc::new(PgBatch { db, id }), op, ctx).await
}

/// A batch of one account's ops, applied as one database transaction.
struct PgBatch {
    db: Arc<PgLedger>,
    id: Arc<str>,
}

impl BatchApply for PgBatch {
    fn apply(&self, ops: &mut [(BatchOp, CallContext)]) -> Vec<LedgerResult<OpResult>> {
        self.db.run_batch(&self.id, ops)
    }
}
