//! What `/metrics` shows of the PostgreSQL ledger: open accounts and
//! remembered request ids counted in the database (every server on it sees
//! the same numbers), and this server's withdrawals waiting for funds. A
//! scrape asks the database once; it never runs on an async worker's
//! thread as such (`block_in_place` hands the worker's other tasks on).

use super::{pool, PgLedger};
use crate::backend::api::BackendState;

/// One scan for both database-wide counts.
const COUNTS: &str = "SELECT count(*), coalesce(sum(remembered), 0)::bigint FROM bank_accounts";

impl PgLedger {
    /// The ledger's numbers now (the database's counts: 0 if it cannot be reached).
    pub fn sampled_state(&self) -> BackendState {
        let (open_accounts, remembered_request_ids) = off_worker(|| self.counts()).unwrap_or((0, 0));
        BackendState {
            open_accounts,
            remembered_request_ids,
            waiting_withdrawals: self.funds.waiting(),
            db_pool: Some(self.pool_state()),
        }
    }

    /// This server's withdrawals waiting for funds now.
    pub fn waiting_withdrawals(&self) -> usize {
        self.funds.waiting()
    }

    /// Pooled connections now: (idle, in use).
    fn pool_state(&self) -> (usize, usize) {
        let state = self.pool.get().state();
        let idle = state.idle_connections as usize;
        (idle, (state.connections as usize).saturating_sub(idle))
    }

    fn counts(&self) -> Option<(usize, usize)> {
        let mut conn = pool::checkout(self.pool.get()).ok()?;
        let row = conn.client.query_one(COUNTS, &[]).ok()?;
        let (accounts, remembered): (i64, i64) = (row.get(0), row.get(1));
        Some((
            usize::try_from(accounts).unwrap_or(0),
            usize::try_from(remembered).unwrap_or(0),
        ))
    }
}

/// Runs blocking `f`; on a multi-threaded runtime's worker, through
/// `block_in_place` so that the worker's other tasks move on meanwhile.
fn off_worker<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
