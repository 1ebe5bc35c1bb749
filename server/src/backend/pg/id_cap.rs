//! `--max-request-ids` on the PostgreSQL ledger, counted per database and
//! shared fairly between principals, by issue 18's rule (as memory's
//! `ledger/id_budget.rs`): past the cap, the ids forgotten are the oldest of
//! the principal (an account's owner; without tokens, every account's
//! `NULL`) that remembers the most. So with P principals remembering ids
//! and a cap C, one that remembers at most C/P ids never loses one to the
//! cap, whoever floods. A forgotten id is counted as forgotten on its
//! account (its `GetOperation` answers `FAILED_PRECONDITION`, as in
//! memory); `GetOperation` itself is never refused.
//!
//! Each server checks once every [`CHECK_EVERY`], on a thread of its own,
//! off the ops' path (an op stays one round trip: no shared counter row that
//! every commit would queue on). One check is one transaction: an advisory
//! lock taken with `try` (with several servers on one database one checks
//! at a time, the others skip: nothing is forgotten twice), the counts per
//! owner (the sum of the accounts' `remembered` column), the share each
//! largest owner gives up ([`to_forget`]), those owners' oldest ids (by
//! insertion order, `position`), their accounts' rows locked in id order
//! (as transfers lock them: no deadlock with an op), the ids deleted and
//! counted as forgotten. The cap may be passed between two checks (by what
//! the servers write in [`CHECK_EVERY`]); the accounts' own
//! `--request-id-retention` holds always.

use std::collections::BTreeMap;
use std::sync::Weak;
use std::time::Duration;

use super::pool::DbPool;
use super::statements::PgConn;

/// How often the count is checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Held by the server checking the cap, for its transaction ("bank ids").
const CHECK_LOCK: &str = "SELECT pg_try_advisory_xact_lock(7302829178040562)";

/// The ids each owner remembers (`NULL`: accounts without an owner).
const PER_OWNER: &str = "SELECT owner, coalesce(sum(remembered), 0)::bigint FROM bank_accounts
    GROUP BY owner HAVING sum(remembered) > 0";

/// The `$2` oldest ids of the accounts owned by `$1` (`NULL`: no owner).
const OLDEST_OF: &str = "SELECT o.position, o.account_id FROM bank_operations o
    JOIN bank_accounts a ON a.id = o.account_id
    WHERE a.owner IS NOT DISTINCT FROM $1 ORDER BY o.position LIMIT $2";

/// Locks the rows of the accounts `$1`, in the order transfers lock them.
const LOCK_ACCOUNTS: &str =
    "SELECT id FROM bank_accounts WHERE id = ANY($1) ORDER BY id COLLATE \"C\" FOR UPDATE";

/// Forgets the ids at positions `$1` and counts them on their accounts.
const FORGET: &str = "WITH gone AS (
    DELETE FROM bank_operations WHERE position = ANY($1) RETURNING account_id
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

/// Forgets ids past `max`, the largest owners' oldest first, if any.
fn enforce(conn: &mut PgConn, max: i64) -> Result<(), postgres::Error> {
    let mut tx = conn.client.transaction()?;
    if !tx.query_one(CHECK_LOCK, &[])?.get::<_, bool>(0) {
        return Ok(()); // another server is checking right now
    }
    let counts: Vec<(Option<String>, i64)> = tx
        .query(PER_OWNER, &[])?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let mut doomed: Vec<i64> = Vec::new();
    let mut accounts: BTreeMap<String, ()> = BTreeMap::new();
    for (owner, n) in to_forget(&counts, max) {
        for row in tx.query(OLDEST_OF, &[&owner, &n])? {
            doomed.push(row.get(0));
            accounts.insert(row.get(1), ());
        }
    }
    if doomed.is_empty() {
        return Ok(());
    }
    let accounts: Vec<String> = accounts.into_keys().collect();
    tx.query(LOCK_ACCOUNTS, &[&accounts])?;
    tx.execute(FORGET, &[&doomed])?;
    tx.commit()
}

/// How many ids each owner forgets so that at most `max` remain, by the
/// rule of forgetting one id at a time from the owner that remembers the
/// most: the largest owners come down to one level (those left one above
/// it are the first in `counts`' order among equals), the others keep all.
pub fn to_forget<O: Clone>(counts: &[(O, i64)], max: i64) -> Vec<(O, i64)> {
    let total: i64 = counts.iter().map(|(_, n)| (*n).max(0)).sum();
    let over = total.saturating_sub(max.max(0));
    if over <= 0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(counts[i].1));
    // The top `k` owners come down to `level`; find the smallest such `k`.
    let mut top_sum = 0i64;
    for k in 1..=order.len() {
        top_sum += counts[order[k - 1]].1;
        let next = order.get(k).map_or(0, |&i| counts[i].1.max(0));
        let k_count = i64::try_from(k).unwrap_or(i64::MAX);
        if top_sum - k_count * next < over {
            continue;
        }
        let kept = top_sum - over;
        let (level, extra) = (kept / k_count, kept % k_count);
        return order[..k]
            .iter()
            .enumerate()
            .map(|(rank, &i)| {
                let keeps = level + i64::from(i64::try_from(rank).unwrap_or(i64::MAX) < extra);
                (counts[i].0.clone(), counts[i].1 - keeps)
            })
            .filter(|(_, n)| *n > 0)
            .collect();
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::to_forget;

    /// Forgets one id at a time from the largest, as memory does.
    fn one_at_a_time(counts: &[(&'static str, i64)], max: i64) -> Vec<i64> {
        let mut left: Vec<i64> = counts.iter().map(|c| c.1).collect();
        while left.iter().sum::<i64>() > max {
            let largest = (0..left.len())
                .max_by_key(|&i| (left[i], std::cmp::Reverse(i)))
                .unwrap();
            left[largest] -= 1;
        }
        left
    }

    fn after(counts: &[(&'static str, i64)], max: i64) -> Vec<i64> {
        let gone = to_forget(counts, max);
        counts
            .iter()
            .map(|(o, n)| n - gone.iter().find(|(g, _)| g == o).map_or(0, |g| g.1))
            .collect()
    }

    #[test]
    fn the_largest_owner_forgets_first_and_a_fair_share_is_never_touched() {
        assert_eq!(to_forget(&[("a", 2), ("b", 20)], 6), vec![("b", 16)]);
        assert_eq!(after(&[("a", 2), ("b", 20)], 6), vec![2, 4]);
        assert!(to_forget(&[("a", 3), ("b", 3)], 6).is_empty());
        assert_eq!(after(&[("a", 0), ("b", 7)], 0), vec![0, 0]);
        for case in [
            vec![("a", 1), ("b", 1), ("c", 1)],
            vec![("a", 10), ("b", 3), ("c", 8), ("d", 8)],
            vec![("a", 100)],
            vec![("a", 4), ("b", 4), ("c", 4), ("d", 1)],
            vec![("a", 5), ("b", 9), ("c", 9)],
        ] {
            for max in 0..30 {
                let mut got = after(&case, max);
                let mut want = one_at_a_time(&case, max);
                got.sort_unstable();
                want.sort_unstable();
                assert_eq!(got, want, "{case:?}, max {max}");
            }
        }
    }
}
