//! The one interface every ledger backend offers to admission ([`Backend`]):
//! memory (with or without the journal of `--data-dir`) and PostgreSQL
//! (`--database-url`). `Ops`, the gate, the fence and the service see only
//! this trait, the ledger's plain types (requests, answers, errors, the call
//! context) and an [`AccountRef`]; what a backend keeps per account, how it
//! runs an op (on the async worker, on the account's runner, on a
//! blocking-pool thread) and where its state lives is its own business.
//!
//! The split of work: admission validates nothing of the backend's, finds the
//! account ([`Backend::account_now`] / [`Backend::account_blocking`]), passes
//! the account's gate, fences a call dropped at the gate (through
//! [`Backend::operation`]) and builds the call context; the backend runs the
//! admitted op and answers once it is durable.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::ledger::{
    CallContext, Deposit, LedgerConfig, LedgerResult, OpResult, Snapshot, Transfer, Withdrawal,
};
use super::runner::Runner;

/// An account known to exist, as a backend hands it to admission: its id
/// (the gate's key), its owner (for `--auth-tokens`), and whatever the
/// backend keeps for it (the in-memory `Account`; nothing for PostgreSQL).
#[derive(Clone)]
pub struct AccountRef {
    id: Arc<str>,
    owner: Option<Arc<str>>,
    handle: Option<Arc<dyn Any + Send + Sync>>,
}

impl Debug for AccountRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountRef")
            .field("id", &self.id)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl AccountRef {
    /// `id`, opened by `owner`, with the backend's own `handle` (if any).
    pub fn new(id: Arc<str>, owner: Option<Arc<str>>, handle: Option<Arc<dyn Any + Send + Sync>>) -> Self {
        AccountRef { id, owner, handle }
    }

    /// The account's id.
    pub fn id(&self) -> &Arc<str> {
        &self.id
    }

    /// The principal that opened it, if it was opened with tokens.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// The backend's handle, if it is a `T` (the backend that made this ref knows which).
    pub fn handle<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        Arc::clone(self.handle.as_ref()?).downcast::<T>().ok()
    }
}

/// What a backend reports for `/metrics`: counted over the whole ledger
/// (for PostgreSQL: the database, as last sampled).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackendState {
    /// `bank_open_accounts`.
    pub open_accounts: usize,
    /// `bank_remembered_request_ids`.
    pub remembered_request_ids: usize,
    /// `bank_waiting_withdrawals` (this server's waiters).
    pub waiting_withdrawals: usize,
    /// `bank_db_pool_connections`: (idle, in use), for a database backend.
    pub db_pool: Option<(usize, usize)>,
}

/// A ledger backend. Object safe: admission holds an `Arc<dyn Backend>`.
/// The async ops take `self: Arc<Self>` and return `'static` futures, so a
/// backend can move itself onto a runner or a blocking-pool thread.
pub trait Backend: Send + Sync + Debug + 'static {
    /// The ledger's settings (limits, delay, retention, the zoo).
    fn config(&self) -> &LedgerConfig;

    /// Whether deposits and withdrawals go to the runner in batches
    /// (`--batch-max` > 1; never for the demos of a broken monitor).
    fn batching(&self) -> bool {
        let config = self.config();
        config.batch_max > 1
            && !config.racy_withdrawals()
            && config.inject_bug == super::ledger::InjectedBug::None
    }

    /// The account `id`, if the answer needs no blocking call (`None`: ask
    /// [`Backend::account_blocking`] on a blocking-pool thread).
    fn account_now(&self, id: &str) -> Option<LedgerResult<AccountRef>>;

    /// The account `id`; may block (a database look).
    fn account_blocking(&self, id: &str) -> LedgerResult<AccountRef>;

    /// `OpenAccount` (for `owner`, if any).
    fn open(
        self: Arc<Self>,
        id: String,
        balance: u64,
        owner: Option<String>,
    ) -> BoxFuture<'static, LedgerResult<Snapshot>>;

    /// An admitted withdrawal (`ctx` holds the admission); `runner` is the account's.
    fn withdraw(
        self: Arc<Self>,
        account: AccountRef,
        runner: Arc<dyn Runner>,
        w: Withdrawal,
        ctx: CallContext,
    ) -> BoxFuture<'static, LedgerResult<OpResult>>;

    /// An admitted deposit.
    fn deposit(
        self: Arc<Self>,
        account: AccountRef,
        runner: Arc<dyn Runner>,
        d: Deposit,
        ctx: CallContext,
    ) -> BoxFuture<'static, LedgerResult<OpResult>>;

    /// An admitted transfer (both gates passed).
    fn transfer(
        self: Arc<Self>,
        from: AccountRef,
        to: AccountRef,
        t: Transfer,
        ctx: CallContext,
    ) -> BoxFuture<'static, LedgerResult<OpResult>>;

    /// `GetBalance` if it can be answered without blocking.
    fn balance_now(&self, account: &AccountRef) -> Option<Snapshot>;

    /// `GetBalance`; may block (called on a blocking-pool thread, admitted).
    fn balance_blocking(&self, account: &AccountRef) -> LedgerResult<Snapshot>;

    /// `GetOperation`: the stored result of `request_id`, or for an unseen id
    /// a fence recorded so that a late copy never takes effect. May block.
    /// Also how a call dropped at the gate is fenced.
    fn operation(&self, account: &AccountRef, request_id: &str) -> LedgerResult<OpResult>;

    /// The numbers `/metrics` shows of the ledger.
    fn state(&self) -> BackendState;
}
