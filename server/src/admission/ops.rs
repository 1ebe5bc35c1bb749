//! The async path of every money-moving op: validate, find the account(s),
//! pass the per-account gate, then run the ledger call: right here when it
//! cannot block (lock free, no delay), else on the account's runner (see
//! [`crate::admission::gate`]) or, for ops that lock two accounts, on a blocking-pool
//! thread of their own. A withdrawal that waits for funds parks as a future
//! between its steps (see [`crate::backend::parked`]): no thread waits for money.
//! Unary handlers and the withdrawal stream both go through here.

use std::sync::Arc;

use crate::rpc::call::Call;
use crate::admission::drain::{Drain, Entered};
use crate::admission::fence::Fence;
use crate::admission::gate::{Gate, Gates};
use crate::backend::ledger::{
    validate_account_id, validate_request_id, Account, Attempt, BatchOp, CallContext, Deposit, InjectedBug,
    Ledger, LedgerConfig, LedgerError, LedgerResult, OpResult, Pending, Snapshot, Transfer, Withdrawal,
};
use crate::backend::pg::PgLedger;
use crate::rpc::zoo::Answers;

/// The state every handler shares.
#[derive(Debug)]
pub struct Ops {
    ledger: Arc<Ledger>,
    gates: Gates,
    drain: Drain,
    answers: Answers,
    /// The shared ledger in PostgreSQL (`--database-url`): every call goes
    /// there (see [`crate::backend::ops_pg`]) and `ledger` stays empty.
    db: Option<Arc<PgLedger>>,
}

impl Ops {
    /// Ops over `ledger`.
    pub fn new(ledger: Arc<Ledger>) -> Self {
        let answers = Answers::new(ledger.config().inject_bug);
        let config = ledger.config();
        let batch_max = if batching(config) { config.batch_max } else { 1 };
        let gates = Gates::new(config.max_blocking_per_account, config.max_queued_per_account)
            .with_batch_max(batch_max);
        Ops {
            ledger,
            gates,
            drain: Drain::default(),
            answers,
            db: None,
        }
    }

    /// The same ops over the PostgreSQL ledger `db`.
    pub fn with_database(mut self, db: Arc<PgLedger>) -> Self {
        self.db = Some(db);
        self
    }

    /// The ledger behind the service.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// How op results are put on the wire (where the zoo's `bad-outcome` lives).
    pub fn answers(&self) -> &Answers {
        &self.answers
    }

    /// The accounts' admission gates.
    pub fn gates(&self) -> &Gates {
        &self.gates
    }

    /// Shutdown state: new calls refused, in-flight ones counted.
    pub fn drain(&self) -> &Drain {
        &self.drain
    }

    /// Counts a call in for as long as the guard lives; `UNAVAILABLE` once
    /// shutdown has begun.
    pub fn enter(&self) -> LedgerResult<Entered<'_>> {
        self.drain.enter()
    }

    /// `OpenAccount` (for `owner`, if any). Durable storage syncs before it
    /// answers, so then it runs on the blocking pool; in memory, right here.
    pub async fn open(
        &self,
        account_id: String,
        balance: u64,
        owner: Option<String>,
    ) -> LedgerResult<Snapshot> {
        let _entered = self.enter()?;
        if let Some(db) = &self.db {
            return crate::backend::ops_pg::open(db, account_id, balance, owner).await;
        }
        if !self.ledger.config().storage.is_durable() {
            return self.ledger.open_owned(&account_id, balance, owner.as_deref());
        }
        let ledger = Arc::clone(&self.ledger);
        blocking(move || ledger.open_owned(&account_id, balance, owner.as_deref())).await
    }

    /// A withdrawal, end to end.
    pub async fn withdraw(&self, w: Withdrawal, call: &Call) -> LedgerResult<OpResult> {
        let _entered = self.enter()?;
        if let Some(db) = &self.db {
            return crate::backend::ops_pg::withdraw(self, db, w, call).await;
        }
        w.validate()?;
        let account = self.ledger.account(&w.account_id)?;
        let gate = self.gates.of(account.id());
        let fence = Fence::new(&self.ledger, &account, &gate, &w.request_id);
        let admission = fence.around(gate.admit()).await?;
        let ctx = call.context(Box::new(move || drop(admission)));
        let ledger = Arc::clone(&self.ledger);
        let racy = ledger.config().racy_withdrawals();
        if w.wait_for_funds && !racy {
            return crate::backend::parked::withdraw((ledger, account, gate), w, ctx).await;
        }
        // The race demo needs its withdrawals side by side, not in a row.
        if batching(ledger.config()) {
            return settle_batched(ctx, gate, ledger, account, BatchOp::Withdraw(w)).await;
        }
        let runner = (!racy).then_some(gate);
        settle(ctx, runner, move |ctx| ledger.try_withdraw(&account, &w, ctx)).await
    }

    /// A deposit, end to end.
    pub async fn deposit(&self, d: Deposit, call: &Call) -> LedgerResult<OpResult> {
        let _entered = self.enter()?;
        if let Some(db) = &self.db {
            return crate::backend::ops_pg::deposit(self, db, d, call).await;
        }
        d.validate()?;
        let account = self.ledger.account(&d.account_id)?;
        let gate = self.gates.of(account.id());
        let fence = Fence::new(&self.ledger, &account, &gate, &d.request_id);
        let admission = fence.around(gate.admit()).await?;
        let ctx = call.context(Box::new(move || drop(admission)));
        let ledger = Arc::clone(&self.ledger);
        if batching(ledger.config()) {
            return settle_batched(ctx, gate, ledger, account, BatchOp::Deposit(d)).await;
        }
        settle(ctx, Some(gate), move |ctx| ledger.try_deposit(&account, &d, ctx)).await
    }

    /// A transfer, end to end: both gates are passed in id order, like the locks.
    pub async fn transfer(&self, t: Transfer, call: &Call) -> LedgerResult<OpResult> {
        let _entered = self.enter()?;
        if let Some(db) = &self.db {
            return crate::backend::ops_pg::transfer(self, db, t, call).await;
        }
        t.validate()?;
        let from = self.ledger.account(&t.from_account_id)?;
        let to = self.ledger.account(&t.to_account_id)?;
        let from_gate = self.gates.of(from.id());
        let fence = Fence::new(&self.ledger, &from, &from_gate, &t.request_id);
        let (first, second) = if from.id() < to.id() {
            (self.gates.of(from.id()), self.gates.of(to.id()))
        } else {
            (self.gates.of(to.id()), self.gates.of(from.id()))
        };
        let admissions = fence
            .around(async { Ok::<_, LedgerError>((first.admit().await?, second.admit().await?)) })
            .await?;
        let ctx = call.context(Box::new(move || drop(admissions)));
        let ledger = Arc::clone(&self.ledger);
        settle(ctx, None, move |ctx| ledger.try_transfer(&from, &to, &t, ctx)).await
    }

    /// `GetBalance`: read right here when the account's lock is free (a read
    /// never sleeps under it), else on a blocking-pool thread, since the lock
    /// may be held through a processing delay; that thread is reached through
    /// the account's gate, like every op (no unbounded queue before the pool).
    pub async fn balance(&self, account_id: &str) -> LedgerResult<Snapshot> {
        let _entered = self.enter()?;
        if let Some(db) = &self.db {
            return crate::backend::ops_pg::balance(self, db, account_id).await;
        }
        let account = self.ledger.account(account_id)?;
        if let Some(snapshot) = self.ledger.try_balance(&account) {
            return Ok(snapshot);
        }
        let admission = self.gates.of(account.id()).admit().await?;
        let ledger = Arc::clone(&self.ledger);
        blocking(move || {
            let _admitted = admission;
            Ok(ledger.balance(&account))
        })
        .await
    }

    /// `GetOperation`: the stored result, fencing an unseen id; admitted at
    /// the account's gate before it takes a blocking-pool thread.
    pub async fn operation(&self, account_id: String, request_id: String) -> LedgerResult<OpResult> {
        let _entered = self.enter()?;
        // Malformed ids are refused alike on every backend, before any lookup.
        validate_account_id(&account_id)?;
        validate_request_id(&request_id)?;
        if request_id.is_empty() {
            return Err(LedgerError::InvalidArgument(
                "request_id must not be empty".into(),
            ));
        }
        if let Some(db) = &self.db {
            return crate::backend::ops_pg::operation(self, db, account_id, request_id).await;
        }
        let account = self.ledger.account(&account_id)?;
        let admission = self.gates.of(account.id()).admit().await?;
        let ledger = Arc::clone(&self.ledger);
        blocking(move || {
            let _admitted = admission;
            ledger.operation(&account, &request_id)
        })
        .await
    }
}

/// Runs an admitted op. First here, on the async worker, with a context that
/// may not block: the ledger then only takes a lock that is free now and
/// only when nothing can sleep under it (zero delay, no wait for funds), so
/// the worker never blocks. If it would block, the ledger changed nothing and
/// said so: the op runs again where it may block, on the account's runner
/// (`runner`, its gate) if given, else on a blocking-pool thread of its own.
/// The admission (held by `ctx`) is given back when the op is done.
async fn settle<F>(mut ctx: CallContext, runner: Option<Arc<Gate>>, mut op: F) -> LedgerResult<OpResult>
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
        Some(gate) => gate.run(op).await?,
        None => blocking(op).await?,
    };
    pending.settled().await
}

/// Whether deposits and withdrawals go to the runner in batches
/// (`--batch-max` > 1; never for the demos of a broken monitor).
fn batching(config: &LedgerConfig) -> bool {
    config.batch_max > 1 && !config.racy_withdrawals() && config.inject_bug == InjectedBug::None
}

/// [`settle`] for a batchable op: tried here first as ever; if it would
/// block, queued on the account's runner, which applies it in a batch.
async fn settle_batched(
    mut ctx: CallContext,
    gate: Arc<Gate>,
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
    gate.run_batched(ledger, account, op, ctx).await
}

/// Runs a ledger call on tokio's blocking pool; async workers never block.
pub async fn blocking<T, F>(f: F) -> LedgerResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> LedgerResult<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LedgerError::Internal(format!("blocking task failed: {e}")))?
}
