//! Transfers on the PostgreSQL ledger: both accounts' monitors taken in id
//! order, then one transaction that locks both rows in the same order
//! (`ORDER BY id COLLATE "C" FOR UPDATE`, so opposite transfers through
//! different servers cannot deadlock either), decides as the in-memory
//! ledger does (both accounts take a sequence number; money moves only when
//! approved), writes both rows and the source's request-id record, commits.

use super::pool::DbFailure;
use super::rows::{self, AccountRow, Kind, NewRecord};
use super::rules::replay;
use super::statements::Tx;
use super::{txn, PgLedger};
use crate::backend::ledger::{
    CallContext, InjectedBug, LedgerError, LedgerResult, OpResult, Outcome, Transfer,
};

impl PgLedger {
    /// A transfer, committed before it returns.
    pub fn transfer(&self, t: &Transfer, ctx: &CallContext) -> LedgerResult<OpResult> {
        t.validate()?;
        if self.config.inject_bug == InjectedBug::NonAtomicTransfer {
            // BUG (zoo): non-atomic-transfer.
            return self.transfer_in_two_steps(t, ctx);
        }
        let (from, to) = (t.from_account_id.as_str(), t.to_account_id.as_str());
        let (first, second) = if from < to { (from, to) } else { (to, from) };
        let (m1, m2) = (self.monitors.of(first), self.monitors.of(second));
        let _held = (m1.lock(), m2.lock());
        if self.one_trip_allowed(ctx) {
            if let Some(answer) = self.one_trip_transfer(t) {
                return answer;
            }
        }
        txn::run(self.pool.get(), self.isolation, |tx| {
            self.try_transfer(tx, t, ctx)
        })
    }

    fn try_transfer(&self, tx: &mut Tx<'_>, t: &Transfer, ctx: &CallContext) -> Result<OpResult, DbFailure> {
        let (from, to) = (t.from_account_id.as_str(), t.to_account_id.as_str());
        let (src, dst) = rows::lock_two(tx, from, to)?;
        let kind = Kind::Transfer(to.to_owned());
        if let Some(replayed) = replay(tx, from, &t.request_id, &kind, t.amount)? {
            // BUG (zoo): double-apply-retry moves an approved replay's money again.
            self.reapply_transfer(tx, t, (&src, &dst), &replayed)?;
            return Ok(replayed);
        }
        let retention = self.config.request_id_retention;
        if ctx.abandoned() {
            let result = OpResult::not_applied(&t.request_id);
            let record = record(kind, t.amount, &result);
            rows::write(tx, from, &src, (src.balance, src.sequence), &[record], retention)?;
            return Ok(result);
        }
        let approve = src.balance >= t.amount;
        let credited = dst.balance.checked_add(t.amount);
        if approve && credited.is_none() {
            return Err(DbFailure::Ledger(LedgerError::BalanceOverflow {
                account_id: to.to_owned(),
                amount: t.amount,
            }));
        }
        self.delay();
        let (balance, to_balance, outcome) = match (approve, src.balance.checked_sub(t.amount), credited) {
            (true, Some(left), Some(credited)) => (left, credited, Outcome::Approved),
            _ => (src.balance, dst.balance, Outcome::InsufficientFunds),
        };
        let result = OpResult {
            request_id: t.request_id.clone(),
            outcome,
            balance,
            sequence: src.sequence.saturating_add(1),
            replayed: false,
            to_balance,
            to_sequence: dst.sequence.saturating_add(1),
        };
        let record = record(kind, t.amount, &result);
        rows::write(tx, from, &src, (balance, result.sequence), &[record], retention)?;
        rows::set(tx, to, (to_balance, result.to_sequence))?;
        Ok(result)
    }
}

impl PgLedger {
    /// BUG (zoo): double-apply-retry, for a transfer: an approved replay
    /// moves the money again (a new sequence number on both) if it can.
    fn reapply_transfer(
        &self,
        tx: &mut Tx<'_>,
        t: &Transfer,
        (src, dst): (&AccountRow, &AccountRow),
        replayed: &OpResult,
    ) -> Result<(), DbFailure> {
        if self.config.inject_bug != InjectedBug::DoubleApplyRetry || replayed.outcome != Outcome::Approved {
            return Ok(());
        }
        let (Some(left), Some(credited)) = (
            src.balance.checked_sub(t.amount),
            dst.balance.checked_add(t.amount),
        ) else {
            return Ok(());
        };
        rows::set(tx, &t.from_account_id, (left, src.sequence.saturating_add(1)))?;
        rows::set(tx, &t.to_account_id, (credited, dst.sequence.saturating_add(1)))
    }

    /// BUG (zoo): non-atomic-transfer. The debit in one transaction under
    /// the source's monitor alone, committed; then the credit in another
    /// under the target's: between them the money is in neither account,
    /// and two opposite transfers can each go first on a different account.
    fn transfer_in_two_steps(&self, t: &Transfer, ctx: &CallContext) -> LedgerResult<OpResult> {
        let (from, to) = (t.from_account_id.as_str(), t.to_account_id.as_str());
        let mut result = {
            let monitor = self.monitors.of(from);
            let _held = monitor.lock();
            txn::run(self.pool.get(), self.isolation, |tx| self.debit_step(tx, t, ctx))?
        };
        if result.replayed || result.outcome == Outcome::NotApplied {
            return Ok(result);
        }
        let approved = result.outcome == Outcome::Approved;
        let monitor = self.monitors.of(to);
        let _held = monitor.lock();
        let (to_balance, to_sequence) = txn::run(self.pool.get(), self.isolation, |tx| {
            let dst = rows::lock(tx, to)?;
            let credited = if approved {
                dst.balance.saturating_add(t.amount)
            } else {
                dst.balance
            };
            let after = (credited, dst.sequence.saturating_add(1));
            rows::set(tx, to, after)?;
            Ok(after)
        })?;
        (result.to_balance, result.to_sequence) = (to_balance, to_sequence);
        Ok(result)
    }

    /// The first half of [`PgLedger::transfer_in_two_steps`]: the source only.
    fn debit_step(&self, tx: &mut Tx<'_>, t: &Transfer, ctx: &CallContext) -> Result<OpResult, DbFailure> {
        let from = t.from_account_id.as_str();
        let src = rows::lock(tx, from)?;
        let kind = Kind::Transfer(t.to_account_id.clone());
        if let Some(replayed) = replay(tx, from, &t.request_id, &kind, t.amount)? {
            return Ok(replayed);
        }
        let retention = self.config.request_id_retention;
        if ctx.abandoned() {
            let result = OpResult::not_applied(&t.request_id);
            rows::write(
                tx,
                from,
                &src,
                (src.balance, src.sequence),
                &[record(kind, t.amount, &result)],
                retention,
            )?;
            return Ok(result);
        }
        self.delay();
        let (outcome, balance) = match src.balance.checked_sub(t.amount) {
            Some(left) => (Outcome::Approved, left),
            None => (Outcome::InsufficientFunds, src.balance),
        };
        let result = OpResult {
            request_id: t.request_id.clone(),
            outcome,
            balance,
            sequence: src.sequence.saturating_add(1),
            replayed: false,
            to_balance: 0,
            to_sequence: 0,
        };
        let rec = record(kind, t.amount, &result);
        rows::write(tx, from, &src, (balance, result.sequence), &[rec], retention)?;
        Ok(result)
    }
}

fn record(kind: Kind, amount: u64, result: &OpResult) -> NewRecord {
    NewRecord {
        kind,
        amount,
        result: result.clone(),
    }
}
