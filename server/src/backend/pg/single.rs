//! Deposits, withdrawals (waiting for funds too, and the zoo's lost update)
//! and `GetOperation`'s lookup-or-fence on the PostgreSQL ledger: each one
//! transaction under the account's monitor, decided by the in-memory
//! ledger's rules on the row it locked.

use std::time::Instant;

use super::one_trip::Trip;
use super::pool::{self, DbFailure};
use super::rows::{self, AccountRow, Kind, NewRecord};
use super::rules::{decide, replay};
use super::statements::{Stmt, Tx};
use super::{txn, zoo, PgLedger};
use crate::backend::ledger::{
    validate_request_id, CallContext, Deposit, LedgerError, LedgerResult, OpResult, Outcome, Withdrawal,
};

/// One deposit or withdrawal, as the transaction sees it.
pub(super) struct Single<'a> {
    pub account: &'a str,
    pub request_id: &'a str,
    pub kind: Kind,
    pub amount: u64,
}

/// What one try of a waiting withdrawal came to.
pub(super) enum Step {
    Done(OpResult),
    /// BUG (zoo): partial-apply committed half an op and answers this error.
    Broken(LedgerError),
    /// Not enough money yet: nothing written, try again later.
    Wait,
}

impl PgLedger {
    /// A deposit, committed before it returns.
    pub fn deposit(&self, d: &Deposit, ctx: &CallContext) -> LedgerResult<OpResult> {
        d.validate()?;
        let op = Single {
            account: &d.account_id,
            request_id: &d.request_id,
            kind: Kind::Deposit,
            amount: d.amount,
        };
        let monitor = self.monitors.of(op.account);
        let _held = monitor.lock();
        done(self.look(&op, ctx, None))
    }

    /// A withdrawal, committed before it returns; one that may wait for
    /// funds sleeps until a credit of its account is heard (see `funds`),
    /// then looks again, until its wait ends.
    pub fn withdraw(&self, w: &Withdrawal, ctx: &mut CallContext) -> LedgerResult<OpResult> {
        w.validate()?;
        let op = Single {
            account: &w.account_id,
            request_id: &w.request_id,
            kind: Kind::Withdraw,
            amount: w.amount,
        };
        if self.racy() {
            // BUG (zoo): lost-update reads without FOR UPDATE and no monitor.
            return txn::run(self.pool.get(), self.isolation, |tx| {
                self.racy_withdrawal(tx, &op, ctx)
            });
        }
        let until = w
            .wait_for_funds
            .then(|| ctx.wait_until(self.config.max_wait, self.config.processing_delay));
        // Watched (here, and in the database: its credits then notify)
        // before the first look, so that no credit after it is missed.
        let mut watch = until.map(|_| self.funds.watch(op.account));
        let _counted = until.map(|_| self.count_waiting(op.account));
        let mut token = 0i64; // this call's registration for the hand-off (`hand_off.rs`)
        loop {
            let seen = watch.as_ref().map(|w| w.seen());
            let step = {
                let monitor = self.monitors.of(op.account);
                let _held = monitor.lock();
                match (until, watch.as_ref().is_some_and(|w| w.enrolled())) {
                    // Counted as waiting: it may register for the hand-off.
                    (Some(until), true) => self.look_waiting(&op, ctx, until, &mut token)?,
                    _ => self.look(&op, ctx, until)?,
                }
            };
            let (Step::Wait, Some(watch), Some(seen), Some(until)) = (&step, &mut watch, seen, until) else {
                let Step::Done(result) = step else {
                    return Err(LedgerError::Internal(
                        "a withdrawal waits without a deadline".into(),
                    ));
                };
                return Ok(result);
            };
            let owner = self.monitors.known(op.account).and_then(|k| k.owner);
            let newly = !watch.enrolled();
            watch.enroll(owner.as_ref(), &self.config)?;
            // A waiter keeps no admission slot: the deposit it waits for must get in.
            ctx.release_admission();
            if newly && self.hand_off_possible(&op, ctx) {
                continue; // look once more, registering for the hand-off, before sleeping
            }
            watch.wait(seen, until);
        }
    }

    /// One look at `op` under its monitor: in one round trip where the op
    /// allows it (`one_trip.rs`), else as a transaction of several statements.
    pub(super) fn look(
        &self,
        op: &Single<'_>,
        ctx: &CallContext,
        until: Option<Instant>,
    ) -> LedgerResult<Step> {
        if self.one_trip_allowed(ctx) {
            let wait = until.is_some_and(|until| Instant::now() < until);
            match self.one_trip(op.account, op.request_id, (&op.kind, op.amount), wait) {
                Some(Ok(Trip::Done(result))) => return Ok(Step::Done(result)),
                Some(Ok(Trip::Short)) => return Ok(Step::Wait),
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        txn::run(self.pool.get(), self.isolation, |tx| {
            self.try_single(tx, op, ctx, until)
        })
    }

    /// Counts a withdrawal as waiting on `account` in the database until the
    /// guard is dropped (a failure only costs promptness: the recheck remains).
    fn count_waiting<'a>(&'a self, account: &'a str) -> CountedWaiting<'a> {
        self.add_waiting(account, 1);
        CountedWaiting { db: self, account }
    }

    fn add_waiting(&self, account: &str, delta: i32) {
        let Ok(mut conn) = pool::checkout(self.pool.get()) else {
            return;
        };
        if let Err(e) = conn.query(Stmt::Waiting, &[&account, &delta]) {
            tracing::debug!(account, "counting a waiter in the database failed: {e}");
        }
    }

    /// One try of `op` in `tx`: replay, abandon, wait (short of funds before
    /// `wait_until`) or decide, hold the delay, and write.
    fn try_single(
        &self,
        tx: &mut Tx<'_>,
        op: &Single<'_>,
        ctx: &CallContext,
        wait_until: Option<Instant>,
    ) -> Result<Step, DbFailure> {
        let row = rows::lock(tx, op.account)?;
        if let Some(replayed) = replay(tx, op.account, op.request_id, &op.kind, op.amount)? {
            // BUG (zoo): double-apply-retry applies an approved replay again.
            zoo::reapply(
                &self.config,
                tx,
                (op.account, &row),
                (&op.kind, op.amount),
                &replayed,
            )?;
            return Ok(Step::Done(replayed));
        }
        if ctx.abandoned() {
            return self.not_applied(tx, op, &row).map(Step::Done);
        }
        let short = op.kind == Kind::Withdraw && row.balance < op.amount;
        if short && wait_until.is_some_and(|until| Instant::now() < until) {
            return Ok(Step::Wait);
        }
        let (outcome, balance) = decide(op.account, row.balance, &op.kind, op.amount)?;
        self.delay();
        // BUG (zoo): partial-apply.
        let half = (&op.kind, op.amount, outcome);
        if let Some(e) = self.zoo.partial(&self.config, tx, (op.account, &row), half)? {
            return Ok(Step::Broken(e));
        }
        self.commit_single(tx, op, &row, (outcome, balance))
            .map(Step::Done)
    }

    /// The seed's race in SQL: read the balance WITHOUT `FOR UPDATE`, hold
    /// the delay, write back `read - amount` and `read sequence + 1`.
    fn racy_withdrawal(
        &self,
        tx: &mut Tx<'_>,
        op: &Single<'_>,
        ctx: &CallContext,
    ) -> Result<OpResult, DbFailure> {
        let row = rows::read_unlocked(tx, op.account)?;
        if let Some(replayed) = replay(tx, op.account, op.request_id, &op.kind, op.amount)? {
            return Ok(replayed);
        }
        if ctx.abandoned() {
            return self.not_applied(tx, op, &row);
        }
        let decided = decide(op.account, row.balance, &op.kind, op.amount)?;
        self.delay();
        self.commit_single(tx, op, &row, decided)
    }

    /// Takes the next sequence number for `op` ending in `outcome` with `balance`.
    fn commit_single(
        &self,
        tx: &mut Tx<'_>,
        op: &Single<'_>,
        row: &AccountRow,
        (outcome, balance): (Outcome, u64),
    ) -> Result<OpResult, DbFailure> {
        let result = OpResult {
            request_id: op.request_id.to_owned(),
            outcome,
            balance,
            sequence: row.sequence.saturating_add(1),
            replayed: false,
            to_balance: 0,
            to_sequence: 0,
        };
        self.write_one(tx, op, row, (balance, result.sequence), &result)?;
        Ok(result)
    }

    /// Writes the account's new (balance, sequence) and `op`'s record of `result`.
    fn write_one(
        &self,
        tx: &mut Tx<'_>,
        op: &Single<'_>,
        row: &AccountRow,
        after: (u64, u64),
        result: &OpResult,
    ) -> Result<(), DbFailure> {
        let record = NewRecord {
            kind: op.kind.clone(),
            amount: op.amount,
            result: result.clone(),
        };
        let retention = self.config.request_id_retention;
        rows::write(tx, op.account, row, after, &[record], retention)
    }

    /// Records an abandoned op as not applied (no sequence number).
    fn not_applied(&self, tx: &mut Tx<'_>, op: &Single<'_>, row: &AccountRow) -> Result<OpResult, DbFailure> {
        let result = OpResult::not_applied(op.request_id);
        self.write_one(tx, op, row, (row.balance, row.sequence), &result)?;
        Ok(result)
    }

    /// `GetOperation`: the stored result of `request_id` on `account`, or,
    /// for an unseen id, a fence written in the same table (so every server
    /// refuses a late copy): NOT_APPLIED, or `OutcomeUnknown` when the
    /// account has forgotten older ids.
    pub fn operation(&self, account: &str, request_id: &str) -> LedgerResult<OpResult> {
        validate_request_id(request_id)?;
        if request_id.is_empty() {
            return Err(LedgerError::InvalidArgument(
                "request_id must not be empty".into(),
            ));
        }
        let monitor = self.monitors.of(account);
        let _held = monitor.lock();
        let (result, forgotten) = txn::run(self.pool.get(), self.isolation, |tx| {
            let row = rows::lock(tx, account)?;
            let stored = rows::lookup(tx, account, &[request_id.to_owned()])?;
            if let Some(s) = stored.into_iter().next() {
                return Ok((s.result, 0));
            }
            let record = NewRecord {
                kind: Kind::Fence,
                amount: 0,
                result: OpResult::not_applied(request_id),
            };
            let retention = self.config.request_id_retention;
            rows::write(
                tx,
                account,
                &row,
                (row.balance, row.sequence),
                &[record],
                retention,
            )?;
            Ok((OpResult::not_applied(request_id), row.forgotten))
        })?;
        match forgotten {
            0 => Ok(result),
            forgotten => Err(LedgerError::OutcomeUnknown {
                account_id: account.to_owned(),
                request_id: request_id.to_owned(),
                forgotten: u64::try_from(forgotten).unwrap_or(0),
            }),
        }
    }
}

/// A withdrawal counted as waiting in the database; counted out on drop.
struct CountedWaiting<'a> {
    db: &'a PgLedger,
    account: &'a str,
}

impl Drop for CountedWaiting<'_> {
    fn drop(&mut self) {
        self.db.add_waiting(self.account, -1);
    }
}

fn done(step: LedgerResult<Step>) -> LedgerResult<OpResult> {
    match step? {
        Step::Done(result) => Ok(result),
        Step::Broken(e) => Err(e),
        Step::Wait => Err(LedgerError::Internal("a deposit cannot wait".into())),
    }
}
