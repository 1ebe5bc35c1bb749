//! The async path of every op up to the ledger backend: count the call in
//! (the drain), validate, find the account(s), pass the per-account gate
//! (fencing a call dropped while it waits there), then hand the admitted op
//! to the backend ([`Backend`]), which runs it where it may and answers once
//! it is durable. Unary handlers and the withdrawal stream both go through
//! here. Nothing here knows which backend it is.

use std::sync::Arc;

use crate::admission::drain::{Drain, Entered};
use crate::admission::fence::Fence;
use crate::admission::gate::{Gate, Gates};
use crate::backend::api::{AccountRef, Backend};
use crate::backend::ledger::{
    validate_account_id, validate_request_id, Deposit, LedgerError, LedgerResult, OpResult, Snapshot,
    Transfer, Withdrawal,
};
use crate::backend::runner::blocking;
use crate::rpc::call::Call;
use crate::rpc::zoo::Answers;

/// The state every handler shares.
#[derive(Debug)]
pub struct Ops {
    backend: Arc<dyn Backend>,
    gates: Gates,
    drain: Drain,
    answers: Answers,
}

impl Ops {
    /// Ops over `backend` (an `Arc<Ledger>` for memory, an `Arc<PgLedger>`).
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        let config = backend.config();
        let answers = Answers::new(config.inject_bug);
        let batch_max = if backend.batching() { config.batch_max } else { 1 };
        let gates = Gates::new(config.max_blocking_per_account, config.max_queued_per_account)
            .with_batch_max(batch_max);
        Ops {
            backend,
            gates,
            drain: Drain::default(),
            answers,
        }
    }

    /// The ledger backend behind the service.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
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

    /// The account `id` (the backend validates it), asked off the async
    /// worker when the answer needs a blocking call.
    pub async fn account(&self, id: &str) -> LedgerResult<AccountRef> {
        if let Some(found) = self.backend.account_now(id) {
            return found;
        }
        let (backend, id) = (Arc::clone(&self.backend), id.to_owned());
        blocking(move || backend.account_blocking(&id)).await
    }

    /// `OpenAccount` (for `owner`, if any).
    pub async fn open(
        &self,
        account_id: String,
        balance: u64,
        owner: Option<String>,
    ) -> LedgerResult<Snapshot> {
        let _entered = self.enter()?;
        Arc::clone(&self.backend).open(account_id, balance, owner).await
    }

    /// A withdrawal, end to end.
    pub async fn withdraw(&self, w: Withdrawal, call: &Call) -> LedgerResult<OpResult> {
        let _entered = self.enter()?;
        w.validate()?;
        let account = self.account(&w.account_id).await?;
        let gate = self.gates.of(account.id());
        let fence = Fence::new(&self.backend, &account, &gate, &w.request_id);
        let admission = fence.around(gate.admit()).await?;
        let ctx = call.context(Box::new(move || drop(admission)));
        Arc::clone(&self.backend).withdraw(account, gate, w, ctx).await
    }

    /// A deposit, end to end.
    pub async fn deposit(&self, d: Deposit, call: &Call) -> LedgerResult<OpResult> {
        let _entered = self.enter()?;
        d.validate()?;
        let account = self.account(&d.account_id).await?;
        let gate = self.gates.of(account.id());
        let fence = Fence::new(&self.backend, &account, &gate, &d.request_id);
        let admission = fence.around(gate.admit()).await?;
        let ctx = call.context(Box::new(move || drop(admission)));
        Arc::clone(&self.backend).deposit(account, gate, d, ctx).await
    }

    /// A transfer, end to end: both gates are passed in id order, like the locks.
    pub async fn transfer(&self, t: Transfer, call: &Call) -> LedgerResult<OpResult> {
        let _entered = self.enter()?;
        t.validate()?;
        let from = self.account(&t.from_account_id).await?;
        let to = self.account(&t.to_account_id).await?;
        let from_gate = self.gates.of(from.id());
        let fence = Fence::new(&self.backend, &from, &from_gate, &t.request_id);
        let (first, second) = in_order(&self.gates, &from, &to);
        let admissions = fence
            .around(async { Ok::<_, LedgerError>((first.admit().await?, second.admit().await?)) })
            .await?;
        let ctx = call.context(Box::new(move || drop(admissions)));
        Arc::clone(&self.backend).transfer(from, to, t, ctx).await
    }

    /// `GetBalance`: right here when the backend can answer without blocking
    /// (in memory: the account's lock is free; a read never sleeps under
    /// it), else on a blocking-pool thread reached through the account's
    /// gate, like every op (no unbounded queue before the pool).
    pub async fn balance(&self, account_id: &str) -> LedgerResult<Snapshot> {
        let _entered = self.enter()?;
        let account = self.account(account_id).await?;
        if let Some(snapshot) = self.backend.balance_now(&account) {
            return Ok(snapshot);
        }
        let admission = self.gates.of(account.id()).admit().await?;
        let backend = Arc::clone(&self.backend);
        blocking(move || {
            let _admitted = admission;
            backend.balance_blocking(&account)
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
        let account = self.account(&account_id).await?;
        let admission = self.gates.of(account.id()).admit().await?;
        let backend = Arc::clone(&self.backend);
        blocking(move || {
            let _admitted = admission;
            backend.operation(&account, &request_id)
        })
        .await
    }
}

/// The gates of `a` and `b`, in id order (the order every op takes them).
fn in_order(gates: &Gates, a: &AccountRef, b: &AccountRef) -> (Arc<Gate>, Arc<Gate>) {
    if a.id() < b.id() {
        (gates.of(a.id()), gates.of(b.id()))
    } else {
        (gates.of(b.id()), gates.of(a.id()))
    }
}
