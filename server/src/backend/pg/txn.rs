//! One ledger transaction against PostgreSQL: started at the configured
//! isolation level, run by a closure, committed before anyone is answered.
//! A serialization failure or deadlock rolls back and runs the whole closure
//! again (decisions included, on fresh state), at most
//! [`SERIALIZATION_RETRIES_MAX`] times; then the op answers UNAVAILABLE
//! (retryable). A commit whose answer is lost is never an acknowledgement.

use std::time::Duration;

use postgres::IsolationLevel;

use super::pool::{checkout, classify, DbFailure, DbPool};
use super::statements::{PgConn, Tx};
use crate::backend::ledger::{LedgerError, LedgerResult};

/// How often a transaction that hit a serialization failure or deadlock is
/// run again before the op answers UNAVAILABLE.
pub const SERIALIZATION_RETRIES_MAX: u32 = 16;
/// The first pause before a retry; doubled each time up to [`RETRY_PAUSE_MAX`].
pub const RETRY_PAUSE_MIN: Duration = Duration::from_micros(500);
/// The longest pause before a retry.
pub const RETRY_PAUSE_MAX: Duration = Duration::from_millis(20);

/// The isolation level of every ledger transaction (`--isolation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// Each statement sees what was committed before it; row locks
    /// (`FOR UPDATE`) order the ops on one account. The default.
    #[default]
    ReadCommitted,
    /// One snapshot per transaction; a row changed since is a serialization
    /// failure (retried).
    RepeatableRead,
    /// As if one transaction ran after another; conflicts are retried.
    Serializable,
}

impl Isolation {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read-committed",
            Isolation::RepeatableRead => "repeatable-read",
            Isolation::Serializable => "serializable",
        }
    }

    fn level(self) -> IsolationLevel {
        match self {
            Isolation::ReadCommitted => IsolationLevel::ReadCommitted,
            Isolation::RepeatableRead => IsolationLevel::RepeatableRead,
            Isolation::Serializable => IsolationLevel::Serializable,
        }
    }
}

/// Runs `body` in a transaction on a pooled connection and commits it;
/// retried from the start on a serialization failure or deadlock.
pub fn run<T>(
    pool: &DbPool,
    isolation: Isolation,
    mut body: impl FnMut(&mut Tx<'_>) -> Result<T, DbFailure>,
) -> LedgerResult<T> {
    let mut conn = checkout(pool)?;
    let mut pause = RETRY_PAUSE_MIN;
    let mut last = String::new();
    for _ in 0..=SERIALIZATION_RETRIES_MAX {
        let attempt = once(&mut conn, isolation, &mut body);
        match attempt {
            Ok(value) => return Ok(value),
            Err(DbFailure::Ledger(e)) => return Err(e),
            Err(DbFailure::Retry(why)) => last = why,
        }
        conn.observer.db_retry();
        std::thread::sleep(pause);
        pause = (pause * 2).min(RETRY_PAUSE_MAX);
    }
    Err(LedgerError::Unavailable(format!(
        "the ledger database refused the transaction {} times in a row (serialization failures or deadlocks); retry it with the same request id: {last}",
        SERIALIZATION_RETRIES_MAX + 1
    )))
}

/// One try: begin, run, commit. Dropping an uncommitted transaction rolls it back.
fn once<T>(
    conn: &mut PgConn,
    isolation: Isolation,
    body: &mut impl FnMut(&mut Tx<'_>) -> Result<T, DbFailure>,
) -> Result<T, DbFailure> {
    let begin = conn.client.build_transaction().isolation_level(isolation.level());
    let tx = begin.start().map_err(|e| classify(&e))?;
    let mut tx = Tx {
        tx,
        statements: &conn.statements,
        observer: &conn.observer,
    };
    let value = body(&mut tx)?;
    tx.tx.commit().map_err(|e| classify(&e))?;
    Ok(value)
}
