//! A batch of one account's deposits and withdrawals (`--batch-max`) in one
//! round trip: one call of `bank_batch` (schema version 4) in autocommit,
//! instead of BEGIN, lock, look-up, write, COMMIT. The function decides each
//! op by the same rules as [`super::batch`]'s transaction, in queue order;
//! a stored record comes back for the server to judge (replay, conflict,
//! fence), as in `one_trip.rs`. Taken where one round trip is allowed
//! ([`PgLedger::one_trip_allowed`] for the batch: no delay, no zoo,
//! read-committed);
//! when the database asks for a rerun the batch runs as the transaction.

use super::batch::{kind_of, request_id, Decided};
use super::one_trip::ledger_error;
use super::pool::{self, DbFailure};
use super::rows::{self, Kind};
use super::rules::check;
use super::statements::Stmt;
use super::PgLedger;
use crate::backend::ledger::{BatchOp, CallContext, LedgerError, LedgerResult, OpResult};

impl PgLedger {
    /// `ops` (all on `account`) in one call; `None` when they must run as a
    /// transaction. The caller holds the account's monitor.
    pub(super) fn batch_trip(
        &self,
        account: &str,
        ops: &[(BatchOp, CallContext)],
    ) -> Option<LedgerResult<Vec<Decided>>> {
        let mut cols = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (op, ctx) in ops {
            let (kind, amount) = kind_of(op);
            cols.0.push(request_id(op).to_owned());
            cols.1.push(i16::from(kind != Kind::Deposit));
            cols.2.push(amount.to_string());
            cols.3.push(ctx.abandoned());
        }
        let retention = i64::try_from(self.config.request_id_retention).unwrap_or(i64::MAX);
        let mut conn = match pool::checkout(self.pool.get()) {
            Ok(conn) => conn,
            Err(e) => return Some(Err(e)),
        };
        let params: [&(dyn postgres::types::ToSql + Sync); 6] =
            [&account, &cols.0, &cols.1, &cols.2, &cols.3, &retention];
        let rows = match conn.query(Stmt::Batch, &params) {
            Ok(rows) => rows,
            Err(e) => {
                return match pool::classify(&e) {
                    DbFailure::Retry(_) => None,
                    DbFailure::Ledger(e) => Some(Err(e)),
                }
            }
        };
        Some(decided(account, ops, &rows))
    }
}

/// Each op's answer from its row of `bank_batch`.
fn decided(
    account: &str,
    ops: &[(BatchOp, CallContext)],
    rows: &[postgres::Row],
) -> LedgerResult<Vec<Decided>> {
    if rows.first().map(|r| r.get::<_, i16>(0)) == Some(2) {
        return Err(LedgerError::AccountNotFound(account.to_owned()));
    }
    if rows.len() != ops.len() {
        return Err(LedgerError::Internal(format!(
            "bank_batch answered {} rows for {} ops",
            rows.len(),
            ops.len()
        )));
    }
    rows.iter()
        .zip(ops)
        .map(|(row, (op, _))| one(account, row, op))
        .collect()
}

fn one(account: &str, row: &postgres::Row, op: &BatchOp) -> LedgerResult<Decided> {
    let (kind, amount) = kind_of(op);
    let read = |row| rows::stored(row, 1).map_err(ledger_error);
    Ok(match row.get::<_, i16>(0) {
        0 => Decided::Change(OpResult {
            replayed: false,
            ..read(row)?.result
        }),
        1 => Decided::Answered(check(account, read(row)?, &kind, amount).map_err(ledger_error)),
        3 => Decided::Answered(Err(LedgerError::BalanceOverflow {
            account_id: account.to_owned(),
            amount,
        })),
        5 => Decided::Later,
        other => {
            return Err(LedgerError::Internal(format!(
                "bank_batch answered status {other}"
            )))
        }
    })
}
