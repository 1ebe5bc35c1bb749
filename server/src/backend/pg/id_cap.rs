//! `--max-request-ids` on the PostgreSQL ledger, counted per database: the
//! request ids remembered by every account of the database (the sum of the
//! accounts' `remembered` column). Each server checks the count once a
//! second, on a thread of its own and, past the cap, forgets the oldest ids
//! of the whole database (by insertion order, `position`), counting them as
//! forgotten on their accounts (so a `GetOperation` of one answers
//! `FAILED_PRECONDITION`, as in memory). The cap may be passed between two
//! checks (by what the servers write in [`CHECK_EVERY`]); the accounts'
//! own `--request-id-retention` holds always. Unlike memory there is no
//! fair share between principals: the oldest ids go first, whoever's.

use std::sync::Weak;
use std::time::Duration;

use super::pool::DbPool;
use super::statements::PgConn;

/// How often the count is checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The ids remembered in the database.
const REMEMBERED: &str = "SELECT coalesce(sum(remembered), 0)::bigint FROM bank_accounts";

/// Forgets the `$1` oldest ids of the database and counts them on their accounts.
const FORGET_OLDEST: &str = "WITH gone AS (
    DELETE FROM bank_operations WHERE position IN (
        SELECT position FROM bank_operations ORDER BY position LIMIT $1)
    RETURNING account_id
), per AS (SELECT account_id, count(*) AS n FROM gone GROUP BY account_id)
UPDATE bank_accounts a SET remembered = a.remembered - per.n, forgotten = a.forgotten + per.n
    FROM per WHERE a.id = per.account_id";

/// Starts the checker for `max` ids on `pool`; it ends once `alive` (the
/// ledger's) is dropped.
pub fn spawn<T: Send + Sync + 'static>(pool: DbPool, alive: Weak<T>, max: usize) {
    let max = i64::try_from(max).unwrap_or(i64::MAX);
    let spawned = std::thread::Builder::new()
        .name("bank-pg-id-cap".into())
        .spawn(move || {
            while alive.strong_count() > 0 {
                if let Ok(mut conn) = pool.get() {
                    if let Err(e) = enforce(&mut conn, max) {
                        tracing::debug!("--max-request-ids check failed (tried again soon): {e}");
                    }
                }
                std::thread::sleep(CHECK_EVERY);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("--max-request-ids is not enforced on the database: {e}");
    }
}

/// Forgets the oldest ids past `max`, if any.
fn enforce(conn: &mut PgConn, max: i64) -> Result<(), postgres::Error> {
    let remembered: i64 = conn.client.query_one(REMEMBERED, &[])?.get(0);
    let over = remembered.saturating_sub(max);
    if over > 0 {
        conn.client.execute(FORGET_OLDEST, &[&over])?;
    }
    Ok(())
}
