//! The ledger: a map of accounts, each a monitor, and the operations that
//! move money between them. Plain sync Rust with no gRPC types, so it can be
//! tested on its own; the service layer validates, admits and calls it.

mod account;
mod batch;
mod bug;
mod config;
mod context;
mod delay;
mod error;
mod id_budget;
#[cfg(test)]
mod id_budget_model;
mod id_hash;
mod id_slots;
mod locked;
mod observer;
mod op;
mod pending;
#[cfg(test)]
mod quota_tests;
mod recover;
mod request_log;
#[cfg(test)]
mod request_log_model;
mod state;
pub mod storage;
#[cfg(test)]
mod tests;
mod unsynced;
mod waiters;
mod waiting;
mod zoo;
mod zoo_transfer;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

pub use account::Account;
pub use batch::BatchOp;
pub use config::LedgerConfig;
pub use context::{CallContext, Release};
pub use delay::hold as hold_processing_delay;
use delay::processing_delay;
pub use error::{LedgerError, LedgerResult};
use id_budget::IdBudget;
pub use id_hash::IdHasher;
use locked::Locked;
pub use observer::{LedgerObserver, Observer};
pub use op::{
    validate_account_id, validate_request_id, Attempt, Deposit, OpResult, Outcome, Snapshot, Transfer,
    Withdrawal, ACCOUNT_ID_MAX_BYTES, REQUEST_ID_MAX_BYTES,
};
use op::{Fingerprint, OpKind};
pub use pending::Pending;
pub use recover::spawn_snapshotter;
use request_log::Lookup;
use state::State;
use storage::{Record, Ticket};
use waiters::Waiters;
pub use waiters::{WaitAttempt, Waiter, Woken};
pub use zoo::{InjectedBug, PARTIAL_APPLY_EVERY, PARTIAL_APPLY_MESSAGE, STALE_READ_LAG};

/// All accounts of one server.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Looked up on every call: hashed with [`IdHasher`].
    accounts: RwLock<HashMap<Arc<str>, Arc<Account>, IdHasher>>,
    config: LedgerConfig,
    /// Request ids remembered over all accounts (`max_request_ids`).
    ids: Arc<IdBudget>,
    /// Ids being opened: their record is being made durable. Taken before
    /// `accounts`, never the other way round.
    opening: Mutex<HashSet<Arc<str>>>,
    /// Accounts held (open or being opened) per owner, for
    /// `max_accounts_per_principal`. Taken last, after `opening` or `accounts`.
    owned: Mutex<HashMap<Arc<str>, usize>>,
    /// Withdrawals waiting for funds, counted against their limits.
    waiters: Arc<Waiters>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new(config: LedgerConfig) -> Self {
        Ledger {
            accounts: RwLock::default(),
            ids: Arc::new(IdBudget::new(config.max_request_ids)),
            waiters: Arc::new(Waiters::new(config.max_waiters, config.max_waiters_per_principal)),
            config,
            opening: Mutex::default(),
            owned: Mutex::default(),
        }
    }

    /// Request ids remembered now, over all accounts.
    pub fn remembered_request_ids(&self) -> usize {
        self.ids.remembered()
    }

    /// Forgets the oldest request ids of the principal that remembers the
    /// most while more than `max_request_ids` are remembered. Call with no
    /// account lock held; it never waits for one (a busy account is retried
    /// on a later call).
    fn trim_request_ids(&self) {
        if !self.ids.over() {
            return;
        }
        self.ids.trim(|account, pos| {
            let account = self.accounts.read().get(account).cloned();
            // An account is never closed; a missing one has nothing to forget.
            account.map_or(Some(true), |a| a.forget_request_id(pos))
        });
    }

    /// The configuration in force.
    pub fn config(&self) -> &LedgerConfig {
        &self.config
    }

    /// Opens `account_id` with `initial_balance`; it takes no sequence number.
    pub fn open(&self, account_id: &str, initial_balance: u64) -> LedgerResult<Snapshot> {
        self.open_owned(account_id, initial_balance, None)
    }

    /// [`Ledger::open`] on behalf of `owner`, kept with the account.
    pub fn open_owned(
        &self,
        account_id: &str,
        initial_balance: u64,
        owner: Option<&str>,
    ) -> LedgerResult<Snapshot> {
        validate_account_id(account_id)?;
        let id: Arc<str> = Arc::from(account_id);
        let owner: Option<Arc<str>> = owner.map(Arc::from);
        self.reserve(&id, owner.as_ref())?;
        // Durable before the account exists: concurrent opens share a sync,
        // and no lookup waits behind it (the map is not locked meanwhile).
        let balance = initial_balance;
        let persisted = self.config.storage.persist(&[Record::Open {
            account: Arc::clone(&id),
            balance,
            owner: owner.clone(),
        }]);
        let mut opening = self.opening.lock();
        opening.remove(&id);
        if let Err(e) = persisted {
            self.disown(owner.as_ref());
            return Err(e);
        }
        let ids = Arc::clone(&self.ids);
        let account = Arc::new(Account::new(
            Arc::clone(&id),
            initial_balance,
            owner,
            &self.config,
            ids,
        ));
        self.accounts.write().insert(id, account);
        drop(opening);
        Ok(Snapshot {
            account_id: account_id.to_owned(),
            balance: initial_balance,
            sequence: 0,
        })
    }

    /// Claims `id` for an open in progress (counted for `owner`), if it is
    /// free and there is room on the server and for the owner.
    fn reserve(&self, id: &Arc<str>, owner: Option<&Arc<str>>) -> LedgerResult<()> {
        let mut opening = self.opening.lock();
        let accounts = self.accounts.read();
        if accounts.contains_key(id) || opening.contains(id) {
            return Err(LedgerError::AccountExists(id.to_string()));
        }
        let held = accounts.len() + opening.len();
        let max = self.config.max_accounts;
        if held >= max {
            return Err(LedgerError::LimitReached(format!(
                "the server holds {held} accounts; the limit is {max} (--max-accounts)"
            )));
        }
        self.own(owner, true)?;
        opening.insert(Arc::clone(id));
        Ok(())
    }

    /// Counts one more account for `owner` (if any); when `capped`, refuses
    /// (changing nothing) if the owner already holds `max_accounts_per_principal`.
    fn own(&self, owner: Option<&Arc<str>>, capped: bool) -> LedgerResult<()> {
        let Some(owner) = owner else { return Ok(()) };
        let mut owned = self.owned.lock();
        let held = owned.get(owner).copied().unwrap_or(0);
        let max = self.config.max_accounts_per_principal;
        if capped && held >= max {
            return Err(LedgerError::LimitReached(format!(
                "principal {owner:?} holds {held} accounts; the limit is {max} (--max-accounts-per-principal)"
            )));
        }
        owned.insert(Arc::clone(owner), held + 1);
        Ok(())
    }

    /// Gives back the count [`Ledger::own`] took for an open that failed.
    fn disown(&self, owner: Option<&Arc<str>>) {
        let Some(owner) = owner else { return };
        let mut owned = self.owned.lock();
        if let Some(held) = owned.get_mut(owner) {
            *held = held.saturating_sub(1);
        }
    }

    /// Accounts `owner` holds (open or being opened).
    pub fn accounts_of(&self, owner: &str) -> usize {
        self.owned.lock().get(owner).copied().unwrap_or(0)
    }

    /// The account with this id.
    pub fn account(&self, account_id: &str) -> LedgerResult<Arc<Account>> {
        validate_account_id(account_id)?;
        self.accounts
            .read()
            .get(account_id)
            .cloned()
            .ok_or_else(|| LedgerError::AccountNotFound(account_id.to_owned()))
    }

    /// How many accounts are open.
    pub fn account_count(&self) -> usize {
        self.accounts.read().len()
    }

    /// What `GetBalance` answers for `account` (see [`Account::read`]).
    pub fn balance(&self, account: &Account) -> Snapshot {
        account.read(&self.config)
    }

    /// `GetBalance`'s answer without waiting, if the lock is free (see [`Account::try_read`]).
    pub fn try_balance(&self, account: &Account) -> Option<Snapshot> {
        account.try_read(&self.config)
    }

    /// Sum of all balances (u128: cannot overflow), for conservation checks.
    pub fn total_balance(&self) -> u128 {
        let accounts: Vec<Arc<Account>> = self.accounts.read().values().cloned().collect();
        accounts.iter().map(|a| u128::from(a.snapshot().balance)).sum()
    }

    /// A deposit on `account` (which must be the request's account), on a
    /// context that may block.
    pub fn deposit(&self, account: &Account, d: &Deposit, ctx: &CallContext) -> LedgerResult<OpResult> {
        blocked(self.try_deposit(account, d, ctx)?)?.wait()
    }

    /// A deposit as `ctx` allows: `WouldBlock` (nothing changed) if it would block.
    pub fn try_deposit(
        &self,
        account: &Account,
        d: &Deposit,
        ctx: &CallContext,
    ) -> LedgerResult<Attempt<Pending<OpResult>>> {
        d.validate()?;
        debug_assert_eq!(&**account.id(), d.account_id);
        let attempt = account.deposit(d, ctx, &self.config);
        self.trim_request_ids();
        attempt
    }

    /// A withdrawal on `account` (which must be the request's account), on a
    /// context that may block.
    pub fn withdraw(
        &self,
        account: &Account,
        w: &Withdrawal,
        ctx: &mut CallContext,
    ) -> LedgerResult<OpResult> {
        blocked(self.try_withdraw(account, w, ctx)?)?.wait()
    }

    /// A withdrawal as `ctx` allows (see [`Ledger::try_deposit`]).
    pub fn try_withdraw(
        &self,
        account: &Account,
        w: &Withdrawal,
        ctx: &mut CallContext,
    ) -> LedgerResult<Attempt<Pending<OpResult>>> {
        w.validate()?;
        debug_assert_eq!(&**account.id(), w.account_id);
        let attempt = self.withdraw_here(account, w, ctx);
        self.trim_request_ids();
        attempt
    }

    /// Moves money between two accounts, locked in id order, on a context
    /// that may block.
    pub fn transfer(
        &self,
        from: &Account,
        to: &Account,
        t: &Transfer,
        ctx: &CallContext,
    ) -> LedgerResult<OpResult> {
        blocked(self.try_transfer(from, to, t, ctx)?)?.wait()
    }

    /// A transfer as `ctx` allows (see [`Ledger::try_deposit`]).
    pub fn try_transfer(
        &self,
        from: &Account,
        to: &Account,
        t: &Transfer,
        ctx: &CallContext,
    ) -> LedgerResult<Attempt<Pending<OpResult>>> {
        let attempt = self.transfer_locked(from, to, t, ctx);
        self.trim_request_ids();
        attempt
    }

    /// [`Ledger::try_transfer`] under both accounts' locks.
    fn transfer_locked(
        &self,
        from: &Account,
        to: &Account,
        t: &Transfer,
        ctx: &CallContext,
    ) -> LedgerResult<Attempt<Pending<OpResult>>> {
        t.validate()?;
        let fp = Fingerprint::new(OpKind::TransferTo(Arc::clone(to.id())), t.amount);
        if self.config.inject_bug == InjectedBug::NonAtomicTransfer {
            // BUG (zoo): non-atomic-transfer debits and credits in two critical sections.
            return zoo_transfer::transfer_in_two_steps(from, to, t, &fp, ctx, &self.config);
        }
        let Some((mut src, mut dst)) = lock_pair(from, to, ctx, &self.config) else {
            return Ok(Attempt::WouldBlock);
        };
        if let Lookup::Replay(r) = src.log.check(from.id(), &t.request_id, &fp)? {
            // BUG (zoo): double-apply-retry moves a replayed transfer's money again.
            zoo::reapply_transfer(&self.config, &r, &mut src, &mut dst, t.amount);
            return Ok(Attempt::Done(src.replay(r)));
        }
        if ctx.abandoned() {
            return src
                .abandon(&self.config, from.id(), &t.request_id, &fp)
                .map(Attempt::Done);
        }
        let approve = src.balance >= t.amount;
        if approve && dst.balance.checked_add(t.amount).is_none() {
            return Err(overflow(to, t.amount));
        }
        processing_delay(&self.config);
        let result = transfer_result(&src, &dst, t, approve);
        // One record for both accounts, built on both accounts' unsynced state.
        let after: Vec<&Ticket> = src.last_ticket().into_iter().chain(dst.last_ticket()).collect();
        let ticket = self.config.storage.append_op(from.id(), &fp, &result, &after)?;
        let before = ((src.balance, src.sequence), (dst.balance, dst.sequence));
        apply_transfer(&mut src, &mut dst, &result);
        let undo = src.log.record(&fp, &result);
        src.push_unsynced(ticket.clone(), before.0, [undo]);
        dst.push_unsynced(ticket.clone(), before.1, Vec::new());
        dst.wake_waiters();
        drop((src, dst));
        Ok(Attempt::Done(Pending::after(result, ticket)))
    }

    /// The stored result of `request_id` on `account`, fencing it if unseen.
    pub fn operation(&self, account: &Account, request_id: &str) -> LedgerResult<OpResult> {
        let result = self.lookup_or_fence(account, request_id);
        self.trim_request_ids();
        result?.wait()?
    }

    /// [`Ledger::operation`] under the account's lock.
    fn lookup_or_fence(
        &self,
        account: &Account,
        request_id: &str,
    ) -> LedgerResult<Pending<LedgerResult<OpResult>>> {
        validate_request_id(request_id)?;
        if request_id.is_empty() {
            return Err(LedgerError::InvalidArgument(
                "request_id must not be empty".into(),
            ));
        }
        let mut st = account.lock();
        if let Some(result) = st.log.get(request_id)? {
            // It may be the answer of an op whose record is not synced yet.
            return Ok(Pending::after(Ok(result), st.last_ticket().cloned()));
        }
        // Fencing is a write: durable before anyone hears of it.
        let fence = Record::Fence {
            account: Arc::clone(account.id()),
            request_id: Arc::from(request_id),
        };
        let ticket = self
            .config
            .storage
            .append(&[fence], st.last_ticket().as_slice())?;
        let undo = st.log.fence(request_id);
        let before = (st.balance, st.sequence);
        st.push_unsynced(ticket.clone(), before, [undo]);
        let answer = match st.log.forgotten() {
            0 => Ok(OpResult::not_applied(request_id)),
            forgotten => Err(LedgerError::OutcomeUnknown {
                account_id: account.id().to_string(),
                request_id: request_id.to_owned(),
                forgotten,
            }),
        };
        Ok(Pending::after(answer, ticket))
    }
}

/// The result of an attempt on a context that may block. `WouldBlock` cannot
/// happen there; should a caller pass a context that may not, it is a bug
/// of that caller, answered as an internal error rather than a panic.
fn blocked(attempt: Attempt<Pending<OpResult>>) -> LedgerResult<Pending<OpResult>> {
    match attempt {
        Attempt::Done(result) => Ok(result),
        Attempt::WouldBlock => Err(LedgerError::Internal(
            "a non-blocking context reached a blocking ledger call".into(),
        )),
    }
}

/// Locks two distinct accounts in the global order (by id) so that opposite
/// transfers can never deadlock; returns the guards as (from, to). Takes
/// both as `ctx` allows (see [`Account::lock_as`]): all or nothing.
fn lock_pair<'a>(
    from: &'a Account,
    to: &'a Account,
    ctx: &CallContext,
    cfg: &LedgerConfig,
) -> Option<(Locked<'a>, Locked<'a>)> {
    assert_ne!(from.id(), to.id(), "a transfer locks two different accounts");
    if from.id() < to.id() {
        let src = from.lock_as(ctx, cfg)?;
        Some((src, to.lock_as(ctx, cfg)?))
    } else {
        let dst = to.lock_as(ctx, cfg)?;
        Some((from.lock_as(ctx, cfg)?, dst))
    }
}

/// Both accounts take a sequence number; money moves only when approved.
/// Decided here, applied by [`apply_transfer`] once durable.
fn transfer_result(src: &State, dst: &State, t: &Transfer, approve: bool) -> OpResult {
    // Checked by the caller under the same locks: neither can fail.
    let (balance, to_balance, outcome) = match (
        approve,
        src.balance.checked_sub(t.amount),
        dst.balance.checked_add(t.amount),
    ) {
        (true, Some(left), Some(credited)) => (left, credited, Outcome::Approved),
        _ => (src.balance, dst.balance, Outcome::InsufficientFunds),
    };
    OpResult {
        request_id: t.request_id.clone(),
        outcome,
        balance,
        sequence: src.peek_sequence(),
        replayed: false,
        to_balance,
        to_sequence: dst.peek_sequence(),
    }
}

/// The error of a credit of `amount` that would overflow `to`'s balance.
fn overflow(to: &Account, amount: u64) -> LedgerError {
    LedgerError::BalanceOverflow {
        account_id: to.id().to_string(),
        amount,
    }
}

/// Applies a decided (and durable) transfer to both accounts.
fn apply_transfer(src: &mut State, dst: &mut State, result: &OpResult) {
    src.balance = result.balance;
    src.next_sequence();
    dst.balance = result.to_balance;
    dst.next_sequence();
}
