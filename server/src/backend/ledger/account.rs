//! One account as a monitor: a sync mutex over its balance, sequence counter,
//! request log and the withdrawals waiting for funds (wakers, not threads:
//! see `waiters`). Everything here that takes the lock may block; callers
//! run it on tokio's blocking pool unless the lock is free and nothing can
//! sleep under it.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::config::LedgerConfig;
use super::context::CallContext;
use super::delay::processing_delay;
use super::error::{LedgerError, LedgerResult};
use super::id_budget::IdBudget;
use super::locked::Locked;
use super::observer::Observer;
use super::op::Attempt;
use super::op::{Deposit, Fingerprint, OpKind, OpResult, Snapshot, Withdrawal};
use super::pending::Pending;
use super::request_log::{Lookup, RequestLog};
use super::state::State;
use super::unsynced::Unsynced;
use super::waiters::{WaitAttempt, WaitList, Waiter, Waiters};
use super::zoo::{self, AccountZoo, InjectedBug};

/// An account: its id and its monitor.
#[derive(Debug)]
pub struct Account {
    id: Arc<str>,
    state: Mutex<State>,
    /// The principal that opened the account (`--auth-tokens`), if any.
    owner: Option<Arc<str>>,
    /// Where lock waits and holds are reported.
    observer: Observer,
    /// State of the bug zoo; untouched unless a bug is injected.
    zoo: AccountZoo,
}

impl Account {
    /// A new account with `balance` and nothing done yet, opened by `owner`;
    /// its request ids count against the server-wide `ids`.
    pub fn new(
        id: Arc<str>,
        balance: u64,
        owner: Option<Arc<str>>,
        config: &LedgerConfig,
        ids: Arc<IdBudget>,
    ) -> Self {
        let state = State {
            balance,
            sequence: 0,
            waiters: WaitList::default(),
            log: RequestLog::new(config.request_id_retention, Arc::clone(&id), owner.clone(), ids),
            unsynced: Unsynced::default(),
        };
        Account {
            id,
            state: Mutex::new(state),
            owner,
            observer: config.observer.clone(),
            zoo: AccountZoo::default(),
        }
    }

    /// The account's id.
    pub fn id(&self) -> &Arc<str> {
        &self.id
    }

    /// The principal that opened the account, if it was opened by one.
    pub fn owner(&self) -> Option<&Arc<str>> {
        self.owner.as_ref()
    }

    pub(super) fn lock(&self) -> Locked<'_> {
        Locked::lock(&self.state, &self.observer)
    }

    /// Forgets the request id in slot `pos` of the log for the server-wide cap if the
    /// lock is free now: `None` when busy, else whether it was forgotten (see [`IdBudget::trim`]).
    pub(super) fn forget_request_id(&self, pos: u64) -> Option<bool> {
        let mut st = Locked::try_lock(&self.state, &self.observer)?;
        Some(st.log.forget_at(pos))
    }

    /// The lock, taken as `ctx` allows. A context that may block waits for it.
    /// One that may not (an async worker) gets it only when it is free now and
    /// the op cannot sleep under it (zero processing delay, the lock not
    /// skipped by `unsafe_no_lock`, no bug of the zoo planted); otherwise
    /// `None`, nothing changed.
    pub(super) fn lock_as(&self, ctx: &CallContext, cfg: &LedgerConfig) -> Option<Locked<'_>> {
        if ctx.may_block() {
            return Some(self.lock());
        }
        // The zoo's bugs take the slow path too, so each acts in every mode.
        // A durable op only queues its record here: the wait for the sync
        // comes after the lock is given back (see `pending`).
        if !cfg.processing_delay.is_zero() || cfg.racy_withdrawals() || cfg.inject_bug != InjectedBug::None {
            return None;
        }
        Locked::try_lock(&self.state, &self.observer)
    }

    /// (waiting now, woken by added funds so far) of the withdrawals that
    /// wait for funds on this account.
    pub fn waiter_counts(&self) -> (usize, u64) {
        let st = self.lock();
        (st.waiters.len(), st.waiters.wakeups())
    }

    /// Balance and sequence as last synced, read together under the lock.
    pub fn snapshot(&self) -> Snapshot {
        let (balance, sequence) = self.lock().synced();
        Snapshot {
            account_id: self.id.to_string(),
            balance,
            sequence,
        }
    }

    /// What `GetBalance` answers if the lock is free right now (no wait, so
    /// an async worker may call it); `None` when [`Account::read`] must wait.
    /// The zoo's `stale-read` always takes the slow path.
    pub fn try_read(&self, cfg: &LedgerConfig) -> Option<Snapshot> {
        if cfg.inject_bug == InjectedBug::StaleRead {
            return None;
        }
        let (balance, sequence) = Locked::try_lock(&self.state, &self.observer)?.synced();
        Some(Snapshot {
            account_id: self.id.to_string(),
            balance,
            sequence,
        })
    }

    /// What `GetBalance` answers: the snapshot, or under the zoo's
    /// `stale-read` a copy of it that lags by up to 50 ms.
    pub fn read(&self, cfg: &LedgerConfig) -> Snapshot {
        if cfg.inject_bug == InjectedBug::StaleRead {
            // BUG (zoo): stale-read.
            return self.zoo.stale_read(|| self.snapshot());
        }
        self.snapshot()
    }

    /// How many request ids the account remembers, and how many it forgot.
    pub fn request_log_len(&self) -> (usize, u64) {
        let st = self.lock();
        (st.log.len(), st.log.forgotten())
    }

    /// Deposit under the monitor: check, sleep the delay, credit, wake waiters.
    pub fn deposit(
        &self,
        d: &Deposit,
        ctx: &CallContext,
        cfg: &LedgerConfig,
    ) -> LedgerResult<Attempt<Pending<OpResult>>> {
        let fp = Fingerprint {
            kind: OpKind::Deposit,
            amount: d.amount,
        };
        let Some(mut st) = self.lock_as(ctx, cfg) else {
            return Ok(Attempt::WouldBlock);
        };
        if let Lookup::Replay(r) = st.log.check(&self.id, &d.request_id, &fp)? {
            // BUG (zoo): double-apply-retry credits a replayed deposit again.
            zoo::reapply_deposit(cfg, &r, &mut st, d.amount);
            return Ok(Attempt::Done(st.replay(r)));
        }
        if ctx.abandoned() {
            return st.abandon(cfg, &self.id, &d.request_id, &fp).map(Attempt::Done);
        }
        let Some(balance) = st.balance.checked_add(d.amount) else {
            return Err(LedgerError::BalanceOverflow {
                account_id: self.id.to_string(),
                amount: d.amount,
            });
        };
        processing_delay(cfg);
        // BUG (zoo): partial-apply credits half, answers an error, records nothing.
        if let Some(e) = self.zoo.partial_deposit(cfg, &mut st, d) {
            return Err(e);
        }
        let result = st.settle_deposit(cfg, &self.id, &d.request_id, &fp, balance)?;
        st.wake_waiters();
        Ok(Attempt::Done(result))
    }

    /// Withdrawal under the monitor (or, with `unsafe_no_lock` or the zoo's
    /// `lost-update`, the seed's race). Short of funds with `wait_for_funds`,
    /// it registers a waiter (counted in `waiters`) and returns it: no
    /// thread waits. On a context that may not block it does so only if
    /// `park` (else `WouldBlock`, nothing changed, as for any wait).
    pub(super) fn withdraw(
        &self,
        w: &Withdrawal,
        ctx: &mut CallContext,
        cfg: &LedgerConfig,
        (waiters, park): (&Arc<Waiters>, bool),
    ) -> LedgerResult<WaitAttempt> {
        if cfg.racy_withdrawals() {
            return Ok(match self.withdraw_racy(w, ctx, cfg)? {
                Attempt::Done(result) => WaitAttempt::Done(result),
                Attempt::WouldBlock => WaitAttempt::WouldBlock,
            });
        }
        let fp = Fingerprint::new(OpKind::Withdraw, w.amount);
        let Some(mut st) = self.lock_as(ctx, cfg) else {
            return Ok(WaitAttempt::WouldBlock);
        };
        if let Lookup::Replay(r) = st.log.check(&self.id, &w.request_id, &fp)? {
            // BUG (zoo): double-apply-retry debits a replayed withdrawal again.
            zoo::reapply_withdrawal(cfg, &r, &mut st, w.amount);
            return Ok(WaitAttempt::Done(st.replay(r)));
        }
        if ctx.abandoned() {
            return st
                .abandon(cfg, &self.id, &w.request_id, &fp)
                .map(WaitAttempt::Done);
        }
        if st.balance < w.amount && w.wait_for_funds {
            if !park && !ctx.may_block() {
                return Ok(WaitAttempt::WouldBlock);
            }
            let until = ctx.wait_until(cfg.max_wait, cfg.processing_delay);
            if Instant::now() < until {
                return self.park(&mut st, w, &fp, ctx, (cfg, waiters), until);
            }
        }
        self.debit(&mut st, w, &fp, cfg).map(WaitAttempt::Done)
    }

    /// Registers a waiter (or refuses, changing nothing), gives back the
    /// admission (the deposit it waits for must get in) and marks the
    /// request id pending: a copy of it is "in progress" meanwhile.
    fn park(
        &self,
        st: &mut Locked<'_>,
        w: &Withdrawal,
        fp: &Fingerprint,
        ctx: &mut CallContext,
        (cfg, waiters): (&LedgerConfig, &Arc<Waiters>),
        until: Instant,
    ) -> LedgerResult<WaitAttempt> {
        let limit = (cfg.max_waiters_per_account, &*self.id);
        let waiter = st
            .waiters
            .register(w.amount, until, limit, waiters, self.owner.as_ref())?;
        ctx.release_admission();
        st.log.mark_waiting(&w.request_id, fp);
        Ok(WaitAttempt::Wait(waiter))
    }

    /// A woken (or timed-out) waiter re-checks under the lock: debited if
    /// the funds are there or its wait is over, recorded as not applied if
    /// its call was abandoned, else parked again in its place. Blocks.
    pub(super) fn resume_withdrawal(
        &self,
        w: &Withdrawal,
        waiter: Waiter,
        ctx: &CallContext,
        cfg: &LedgerConfig,
    ) -> LedgerResult<WaitAttempt> {
        let fp = Fingerprint::new(OpKind::Withdraw, w.amount);
        let mut st = self.lock();
        if ctx.abandoned() {
            return self
                .unpark_abandoned(&mut st, w, waiter, cfg)
                .map(WaitAttempt::Done);
        }
        if st.balance < w.amount && Instant::now() < waiter.until() {
            st.waiters.rearm(&waiter);
            // If it was woken, its share is free again for the others.
            st.wake_waiters();
            return Ok(WaitAttempt::Wait(waiter));
        }
        st.waiters.remove(&waiter);
        drop(waiter);
        let result = self.debit(&mut st, w, &fp, cfg);
        st.wake_waiters();
        result.map(WaitAttempt::Done)
    }

    /// Ends a wait whose caller is gone: the waiter deregistered and the
    /// request id recorded as not applied. Blocks.
    pub(super) fn abandon_waiter(
        &self,
        w: &Withdrawal,
        waiter: Waiter,
        cfg: &LedgerConfig,
    ) -> LedgerResult<Pending<OpResult>> {
        let mut st = self.lock();
        self.unpark_abandoned(&mut st, w, waiter, cfg)
    }

    fn unpark_abandoned(
        &self,
        st: &mut Locked<'_>,
        w: &Withdrawal,
        waiter: Waiter,
        cfg: &LedgerConfig,
    ) -> LedgerResult<Pending<OpResult>> {
        st.waiters.remove(&waiter);
        drop(waiter);
        st.wake_waiters();
        let fp = Fingerprint::new(OpKind::Withdraw, w.amount);
        st.abandon(cfg, &self.id, &w.request_id, &fp)
    }

    /// The debit under the lock: the processing delay, then approved if
    /// the balance covers it, else denied; either takes a sequence number.
    fn debit(
        &self,
        st: &mut Locked<'_>,
        w: &Withdrawal,
        fp: &Fingerprint,
        cfg: &LedgerConfig,
    ) -> LedgerResult<Pending<OpResult>> {
        processing_delay(cfg);
        // BUG (zoo): partial-apply debits half, answers an error, records nothing.
        if let Some(e) = self.zoo.partial_withdrawal(cfg, st, w) {
            return Err(e);
        }
        let seen = st.balance;
        st.settle_withdrawal(cfg, &self.id, w, fp, seen)
    }

    /// The seed's broken withdrawal: read, sleep without the lock, write back
    /// `read - amount`. Concurrent withdrawals all see the same balance.
    fn withdraw_racy(
        &self,
        w: &Withdrawal,
        ctx: &CallContext,
        cfg: &LedgerConfig,
    ) -> LedgerResult<Attempt<Pending<OpResult>>> {
        let fp = Fingerprint {
            kind: OpKind::Withdraw,
            amount: w.amount,
        };
        let seen = {
            let Some(mut st) = self.lock_as(ctx, cfg) else {
                return Ok(Attempt::WouldBlock);
            };
            if let Lookup::Replay(r) = st.log.check(&self.id, &w.request_id, &fp)? {
                return Ok(Attempt::Done(st.replay(r)));
            }
            if ctx.abandoned() {
                return st.abandon(cfg, &self.id, &w.request_id, &fp).map(Attempt::Done);
            }
            st.balance
        };
        processing_delay(cfg);
        self.lock()
            .settle_withdrawal(cfg, &self.id, w, &fp, seen)
            .map(Attempt::Done)
    }
}
