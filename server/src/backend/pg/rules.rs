//! The ledger's rules on a locked row, shared by every path of the
//! PostgreSQL ledger (one op, a batch, a transfer, one round trip): a stored
//! record against a new request with the same id (replay, conflict, fence),
//! and what a deposit or withdrawal does to a balance.

use super::pool::DbFailure;
use super::rows::{self, Kind, Stored};
use super::statements::Tx;
use crate::backend::ledger::{LedgerError, OpResult, Outcome};

/// The stored answer for `request_id` if it was seen: a replay, a conflict
/// (same id, other parameters), or NOT_APPLIED for a fenced id.
pub(super) fn replay(
    tx: &mut Tx<'_>,
    account: &str,
    request_id: &str,
    kind: &Kind,
    amount: u64,
) -> Result<Option<OpResult>, DbFailure> {
    if request_id.is_empty() {
        return Ok(None);
    }
    let stored = rows::lookup(tx, account, &[request_id.to_owned()])?;
    match stored.into_iter().next() {
        None => Ok(None),
        Some(s) => check(account, s, kind, amount).map(Some),
    }
}

/// A stored record against a new request with the same id.
pub(super) fn check(account: &str, s: Stored, kind: &Kind, amount: u64) -> Result<OpResult, DbFailure> {
    if s.kind == Kind::Fence || (s.kind == *kind && s.amount == amount) {
        return Ok(s.result);
    }
    Err(DbFailure::Ledger(LedgerError::RequestIdConflict {
        account_id: account.to_owned(),
        request_id: s.result.request_id,
    }))
}

/// What `kind` of `amount` does to `balance`: its outcome and the balance it leaves.
pub(super) fn decide(
    account: &str,
    balance: u64,
    kind: &Kind,
    amount: u64,
) -> Result<(Outcome, u64), DbFailure> {
    match kind {
        Kind::Deposit => balance
            .checked_add(amount)
            .map(|credited| (Outcome::Approved, credited))
            .ok_or_else(|| {
                DbFailure::Ledger(LedgerError::BalanceOverflow {
                    account_id: account.to_owned(),
                    amount,
                })
            }),
        _ => Ok(match balance.checked_sub(amount) {
            Some(left) => (Outcome::Approved, left),
            None => (Outcome::InsufficientFunds, balance),
        }),
    }
}
