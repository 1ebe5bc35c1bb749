//! The bug zoo on the PostgreSQL ledger: the same bugs as the in-memory
//! monitor's (`ledger::zoo`), planted in the database's transactions, so that
//! the verdict can be shown to catch each one on this backend too. Nothing
//! here runs unless `--inject-bug` names a bug; each hook is marked
//! `BUG (zoo)` where it is called. `lost-update` is `single::racy_withdrawal`;
//! `bad-outcome` lives on the wire (`rpc::zoo`), whatever the backend.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

use super::pool::DbFailure;
use super::rows::{self, AccountRow, Kind};
use super::statements::Tx;
use crate::backend::ledger::{
    InjectedBug, LedgerConfig, LedgerError, OpResult, Outcome, Snapshot, PARTIAL_APPLY_EVERY,
    PARTIAL_APPLY_MESSAGE, STALE_READ_LAG,
};

/// This server's zoo state: untouched unless a bug uses it.
#[derive(Debug, Default)]
pub struct PgZoo {
    /// `stale-read`: each account's snapshot and when it was read.
    cached: Mutex<HashMap<String, (Instant, Snapshot)>>,
    /// `partial-apply`: eligible ops seen so far (a deterministic counter).
    eligible: AtomicU64,
}

impl PgZoo {
    /// BUG (zoo): stale-read. The cached snapshot of `id` while it is
    /// younger than `STALE_READ_LAG`, else a fresh one from `read`.
    pub fn stale_read<E>(&self, id: &str, read: impl FnOnce() -> Result<Snapshot, E>) -> Result<Snapshot, E> {
        let now = Instant::now();
        if let Some((at, old)) = self.cached.lock().get(id) {
            if now.duration_since(*at) < STALE_READ_LAG {
                return Ok(old.clone());
            }
        }
        let fresh = read()?;
        self.cached.lock().insert(id.to_owned(), (now, fresh.clone()));
        Ok(fresh)
    }

    /// BUG (zoo): partial-apply. For one in ten approved deposits and
    /// withdrawals of 2 or more: half the amount is applied with a sequence
    /// number, nothing is recorded, and the op answers INTERNAL. `None` otherwise.
    pub fn partial(
        &self,
        cfg: &LedgerConfig,
        tx: &mut Tx<'_>,
        (account, row): (&str, &AccountRow),
        (kind, amount, outcome): (&Kind, u64, Outcome),
    ) -> Result<Option<LedgerError>, DbFailure> {
        if cfg.inject_bug != InjectedBug::PartialApply || outcome != Outcome::Approved || amount < 2 {
            return Ok(None);
        }
        if self.eligible.fetch_add(1, Ordering::Relaxed) % PARTIAL_APPLY_EVERY != PARTIAL_APPLY_EVERY - 1 {
            return Ok(None);
        }
        let balance = match kind {
            Kind::Deposit => row.balance.saturating_add(amount / 2),
            _ => row.balance.saturating_sub(amount / 2),
        };
        rows::set(tx, account, (balance, row.sequence.saturating_add(1)))?;
        Ok(Some(LedgerError::Internal(PARTIAL_APPLY_MESSAGE.into())))
    }
}

/// BUG (zoo): double-apply-retry. A replayed APPROVED deposit or withdrawal
/// is applied again (a new sequence number) if it can be; the replay is
/// still answered as stored.
pub fn reapply(
    cfg: &LedgerConfig,
    tx: &mut Tx<'_>,
    (account, row): (&str, &AccountRow),
    (kind, amount): (&Kind, u64),
    replayed: &OpResult,
) -> Result<(), DbFailure> {
    if cfg.inject_bug != InjectedBug::DoubleApplyRetry || replayed.outcome != Outcome::Approved {
        return Ok(());
    }
    let balance = match kind {
        Kind::Deposit => row.balance.checked_add(amount),
        Kind::Withdraw => row.balance.checked_sub(amount),
        _ => None,
    };
    match balance {
        Some(balance) => rows::set(tx, account, (balance, row.sequence.saturating_add(1))),
        None => Ok(()),
    }
}
