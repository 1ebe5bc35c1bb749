//! A deposit or withdrawal in one round trip to the database: one call of
//! `bank_single` (schema version 3), run as its own transaction (autocommit),
//! instead of BEGIN, lock, look-up, write, COMMIT. Taken only where the op
//! allows it: no processing delay to hold inside the transaction (the
//! delay simulates work in the critical section: the row stays locked
//! through it, and the pooled connection busy), no bug of the zoo,
//! read-committed isolation, a call not abandoned. Otherwise, or when the
//! database asks for a rerun
//! (serialization failure, deadlock: the call changed nothing), the op runs
//! as a transaction of several statements (`single.rs`). The decision is the
//! same: the function applies the ledger's rules, and a stored record comes
//! back for the server to judge (replay, conflict, fence).

use super::pool::{self, DbFailure};
use super::rows::{self, Kind};
use super::rules::check;
use super::statements::Stmt;
use super::{Isolation, PgLedger};
use crate::backend::ledger::{CallContext, InjectedBug, LedgerError, LedgerResult, OpResult, Transfer};

impl PgLedger {
    /// Whether an op on this ledger may take one round trip now.
    pub(super) fn one_trip_allowed(&self, ctx: &CallContext) -> bool {
        self.config.processing_delay.is_zero()
            && self.config.inject_bug == InjectedBug::None
            && !self.config.racy_withdrawals()
            && self.isolation == Isolation::ReadCommitted
            && !ctx.abandoned()
    }

    /// `kind` (a deposit or withdrawal) of `amount` on `account` under
    /// `request_id`, in one call; `None` when it must run as a transaction.
    /// A withdrawal that may `wait` and is short of funds writes nothing
    /// and comes back as [`Trip::Short`].
    pub(super) fn one_trip(
        &self,
        account: &str,
        request_id: &str,
        (kind, amount): (&Kind, u64),
        wait: bool,
    ) -> Option<LedgerResult<Trip>> {
        let code: i16 = match kind {
            Kind::Deposit => 0,
            Kind::Withdraw => 1,
            _ => return None,
        };
        let retention = i64::try_from(self.config.request_id_retention).unwrap_or(i64::MAX);
        let mut conn = match pool::checkout(self.pool.get()) {
            Ok(conn) => conn,
            Err(e) => return Some(Err(e)),
        };
        let params: [&(dyn postgres::types::ToSql + Sync); 6] = [
            &account,
            &request_id,
            &code,
            &amount.to_string(),
            &retention,
            &wait,
        ];
        let rows = match conn.query(Stmt::Single, &params) {
            Ok(rows) => rows,
            Err(e) => {
                return match pool::classify(&e) {
                    DbFailure::Retry(_) => None,
                    DbFailure::Ledger(e) => Some(Err(e)),
                }
            }
        };
        Some(answer(account, rows.first(), (kind, amount)))
    }
}

impl PgLedger {
    /// A transfer in one call; `None` when it must run as a transaction.
    pub(super) fn one_trip_transfer(&self, t: &Transfer) -> Option<LedgerResult<OpResult>> {
        let retention = i64::try_from(self.config.request_id_retention).unwrap_or(i64::MAX);
        let mut conn = match pool::checkout(self.pool.get()) {
            Ok(conn) => conn,
            Err(e) => return Some(Err(e)),
        };
        let amount = t.amount.to_string();
        let params: [&(dyn postgres::types::ToSql + Sync); 5] = [
            &t.from_account_id,
            &t.to_account_id,
            &t.request_id,
            &amount,
            &retention,
        ];
        let rows = match conn.query(Stmt::Transfer, &params) {
            Ok(rows) => rows,
            Err(e) => {
                return match pool::classify(&e) {
                    DbFailure::Retry(_) => None,
                    DbFailure::Ledger(e) => Some(Err(e)),
                }
            }
        };
        let kind = Kind::Transfer(t.to_account_id.clone());
        let answer = answer(&t.from_account_id, rows.first(), (&kind, t.amount));
        Some(answer.and_then(|trip| match trip {
            Trip::Done(result) => Ok(result),
            Trip::Short => Err(LedgerError::Internal("a transfer does not wait".into())),
        }))
    }
}

/// What one call came to.
pub(super) enum Trip {
    Done(OpResult),
    /// A withdrawal that may wait is short of funds; nothing was written.
    Short,
}

/// The ledger's answer from `bank_single`'s row.
pub(super) fn answer(
    account: &str,
    row: Option<&postgres::Row>,
    (kind, amount): (&Kind, u64),
) -> LedgerResult<Trip> {
    let row = row.ok_or_else(|| LedgerError::Internal("bank_single answered no row".into()))?;
    let status: i16 = row.get(0);
    let read = |row| rows::stored(row, 1).map_err(ledger_error);
    match status {
        // 6: a waiting withdrawal's record, written for it by a deposit (`hand_off.rs`).
        0 | 6 => Ok(Trip::Done(OpResult {
            replayed: false,
            ..read(row)?.result
        })),
        1 => check(account, read(row)?, kind, amount)
            .map(Trip::Done)
            .map_err(ledger_error),
        4 => Ok(Trip::Short),
        // For a transfer the account named in `to_account` (the missing one, the one that would overflow).
        2 => Err(LedgerError::AccountNotFound(named(row, account))),
        3 => Err(LedgerError::BalanceOverflow {
            account_id: named(row, account),
            amount,
        }),
        other => Err(LedgerError::Internal(format!(
            "bank_single answered status {other}"
        ))),
    }
}

/// The account `row` names in its `to_account` column, else `account`.
fn named(row: &postgres::Row, account: &str) -> String {
    row.get::<_, Option<String>>(3)
        .unwrap_or_else(|| account.to_owned())
}

/// A failure read back from a function's row, as the ledger's error.
pub(super) fn ledger_error(failure: DbFailure) -> LedgerError {
    match failure {
        DbFailure::Ledger(e) => e,
        DbFailure::Retry(why) => LedgerError::Unavailable(why),
    }
}
