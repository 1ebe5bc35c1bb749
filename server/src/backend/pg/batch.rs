//! Group commit on the PostgreSQL ledger (`--batch-max N`): up to N queued
//! deposits and withdrawals of one account in ONE transaction: one row lock,
//! one processing delay, one commit. Each op is decided alone, in queue
//! order, on the balance the one before it left, and takes its own sequence
//! number; if the transaction fails, none is applied and every op answers
//! the failure. An op whose request id repeats an earlier one of the batch
//! runs alone after it (and finds its answer). Where one round trip is
//! allowed the batch is one call of a plpgsql function (`batch_trip.rs`).

use std::collections::{HashMap, HashSet};

use super::pool::DbFailure;
use super::rows::{self, AccountRow, Kind, NewRecord, Stored};
use super::rules::{check, decide};
use super::statements::Tx;
use super::{txn, PgLedger};
use crate::backend::ledger::{BatchOp, CallContext, LedgerResult, OpResult};

/// What one op of a batch came to inside the transaction.
#[derive(Debug, Clone)]
pub(super) enum Decided {
    /// Answered without a change (a replay, a conflict, an overflow).
    Answered(LedgerResult<OpResult>),
    /// Written by this transaction.
    Change(OpResult),
    /// Its request id repeats an earlier op of this batch: run after it.
    Later,
}

impl PgLedger {
    /// Runs `ops` (all on `account`) as one transaction; one answer per op, in order.
    pub fn run_batch(
        &self,
        account: &str,
        ops: &mut [(BatchOp, CallContext)],
    ) -> Vec<LedgerResult<OpResult>> {
        let decided = {
            let monitor = self.monitors.of(account);
            let _held = monitor.lock();
            self.decide_batch(account, ops)
        };
        let decided = match decided {
            Ok(decided) => decided,
            Err(e) => return ops.iter().map(|_| Err(e.clone())).collect(),
        };
        decided
            .into_iter()
            .zip(ops.iter_mut())
            .map(|(d, (op, ctx))| match d {
                Decided::Answered(answer) => answer,
                Decided::Change(result) => Ok(result),
                Decided::Later => match op {
                    BatchOp::Deposit(d) => self.deposit(d, ctx),
                    BatchOp::Withdraw(w) => self.withdraw(w, ctx),
                },
            })
            .collect()
    }

    /// `ops` decided and written: in one round trip where allowed
    /// (`batch_trip.rs`: no delay to hold), else as a transaction. The
    /// caller holds the account's monitor.
    fn decide_batch(&self, account: &str, ops: &[(BatchOp, CallContext)]) -> LedgerResult<Vec<Decided>> {
        if self.one_trip_allowed(&CallContext::detached()) {
            if let Some(decided) = self.batch_trip(account, ops) {
                return decided;
            }
        }
        txn::run(self.pool.get(), self.isolation, |tx| {
            self.try_batch(tx, account, ops)
        })
    }

    fn try_batch(
        &self,
        tx: &mut Tx<'_>,
        account: &str,
        ops: &[(BatchOp, CallContext)],
    ) -> Result<Vec<Decided>, DbFailure> {
        let row = rows::lock(tx, account)?;
        let ids: Vec<String> = ops.iter().map(|(op, _)| request_id(op).to_owned()).collect();
        let stored: HashMap<String, Stored> = rows::lookup(tx, account, &ids)?
            .into_iter()
            .map(|s| (s.result.request_id.clone(), s))
            .collect();
        self.delay();
        let mut scratch = (row.balance, row.sequence);
        let mut seen = HashSet::new();
        let mut records = Vec::new();
        let decided: Vec<Decided> = ops
            .iter()
            .map(|(op, ctx)| {
                let id = request_id(op);
                if !id.is_empty() && !seen.insert(id) {
                    return Decided::Later;
                }
                let d = decide_one(account, stored.get(id), &mut scratch, op, ctx);
                if let Decided::Change(result) = &d {
                    records.push(new_record(op, result));
                }
                d
            })
            .collect();
        write(
            tx,
            account,
            &row,
            scratch,
            &records,
            self.config.request_id_retention,
        )?;
        Ok(decided)
    }
}

fn write(
    tx: &mut Tx<'_>,
    account: &str,
    row: &AccountRow,
    scratch: (u64, u64),
    records: &[NewRecord],
    retention: usize,
) -> Result<(), DbFailure> {
    if records.is_empty() {
        return Ok(());
    }
    rows::write(tx, account, row, scratch, records, retention)
}

/// Decides one op on the scratch (balance, sequence), as the single path would.
fn decide_one(
    account: &str,
    stored: Option<&Stored>,
    scratch: &mut (u64, u64),
    op: &BatchOp,
    ctx: &CallContext,
) -> Decided {
    let (kind, amount) = kind_of(op);
    if let Some(s) = stored {
        return match check(account, s.clone(), &kind, amount) {
            Ok(replayed) => Decided::Answered(Ok(replayed)),
            Err(DbFailure::Ledger(e)) => Decided::Answered(Err(e)),
            Err(DbFailure::Retry(why)) => {
                Decided::Answered(Err(crate::backend::ledger::LedgerError::Internal(why)))
            }
        };
    }
    if ctx.abandoned() {
        return Decided::Change(OpResult::not_applied(request_id(op)));
    }
    let (outcome, balance) = match decide(account, scratch.0, &kind, amount) {
        Ok(decided) => decided,
        Err(DbFailure::Ledger(e)) => return Decided::Answered(Err(e)),
        Err(DbFailure::Retry(why)) => {
            return Decided::Answered(Err(crate::backend::ledger::LedgerError::Internal(why)))
        }
    };
    *scratch = (balance, scratch.1.saturating_add(1));
    Decided::Change(OpResult {
        request_id: request_id(op).to_owned(),
        outcome,
        balance,
        sequence: scratch.1,
        replayed: false,
        to_balance: 0,
        to_sequence: 0,
    })
}

pub(super) fn request_id(op: &BatchOp) -> &str {
    match op {
        BatchOp::Deposit(d) => &d.request_id,
        BatchOp::Withdraw(w) => &w.request_id,
    }
}

pub(super) fn kind_of(op: &BatchOp) -> (Kind, u64) {
    match op {
        BatchOp::Deposit(d) => (Kind::Deposit, d.amount),
        BatchOp::Withdraw(w) => (Kind::Withdraw, w.amount),
    }
}

fn new_record(op: &BatchOp, result: &OpResult) -> NewRecord {
    let (kind, amount) = kind_of(op);
    NewRecord {
        kind,
        amount,
        result: result.clone(),
    }
}
