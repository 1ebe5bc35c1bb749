//! Transfers on the PostgreSQL ledger: both accounts' monitors taken in id
//! order, then one transaction that locks both rows in the same order
//! (`ORDER BY id COLLATE "C" FOR UPDATE`, so opposite transfers through
//! different servers cannot deadlock either), decides as the in-memory
//! ledger does (both accounts take a sequence number; money moves only when
//! approved), writes both rows and the source's request-id record, commits.

use super::pool::DbFailure;
use super::rows::{self, Kind, NewRecord};
use super::single::replay;
use super::statements::Tx;
use super::{txn, PgLedger};
use crate::backend::ledger::{CallContext, LedgerError, LedgerResult, OpResult, Outcome, Transfer};

impl PgLedger {
    /// A transfer, committed before it returns.
    pub fn transfer(&self, t: &Transfer, ctx: &CallContext) -> LedgerResult<OpResult> {
        t.validate()?;
        let (from, to) = (t.from_account_id.as_str(), t.to_account_id.as_str());
        let (first, second) = if from < to { (from, to) } else { (to, from) };
        let (m1, m2) = (self.monitors.of(first), self.monitors.of(second));
        let _held = (m1.lock(), m2.lock());
        txn::run(self.pool.get(), self.isolation, |tx| {
            self.try_transfer(tx, t, ctx)
        })
    }

    fn try_transfer(&self, tx: &mut Tx<'_>, t: &Transfer, ctx: &CallContext) -> Result<OpResult, DbFailure> {
        let (from, to) = (t.from_account_id.as_str(), t.to_account_id.as_str());
        let (src, dst) = rows::lock_two(tx, from, to)?;
        let kind = Kind::Transfer(to.to_owned());
        if let Some(replayed) = replay(tx, from, &t.request_id, &kind, t.amount)? {
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

fn record(kind: Kind, amount: u64, result: &OpResult) -> NewRecord {
    NewRecord {
        kind,
        amount,
        result: result.clone(),
    }
}
