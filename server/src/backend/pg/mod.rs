//! The shared ledger (`--database-url`): accounts and request ids live in
//! PostgreSQL, so several bank-servers serve the same accounts. Every
//! money-moving op is one transaction run on the blocking thread under the
//! account's in-process monitor: it locks the account row(s) (`FOR UPDATE`,
//! transfers in id order), reads fresh state (another server may have changed
//! it), holds the processing delay, decides by the in-memory ledger's rules
//! (sequence numbers, replays, conflicts, fences), writes balance, sequence
//! and request-id record, and commits before anyone is answered.
//!
//! Plain sync Rust (the sync `postgres` driver through an r2d2 pool); no
//! gRPC types. Failures are the ledger's own errors (`LedgerError`):
//! an unreachable database is `Unavailable`.

mod backend;
mod batch;
mod batch_trip;
mod funds;
mod gauges;
mod hand_off;
mod id_cap;
mod lane;
mod monitor;
mod one_trip;
mod pool;
mod rows;
mod rules;
mod schema;
mod single;
mod statements;
mod transfer;
mod txn;
mod zoo;

use std::sync::Arc;

use crate::backend::api::AccountRef;
use crate::backend::ledger::{
    hold_processing_delay, validate_account_id, InjectedBug, LedgerConfig, LedgerError, LedgerResult,
    Snapshot,
};
use funds::Funds;
use monitor::Monitors;
use pool::ClosingPool;
pub use pool::{CONNECT_TIMEOUT, POOL_CHECKOUT_TIMEOUT, STATEMENT_TIMEOUT};
pub use schema::SCHEMA_VERSION;
use statements::Stmt;
pub use txn::{Isolation, SERIALIZATION_RETRIES_MAX};

/// Connections per server unless `--database-pool` says otherwise.
pub const DEFAULT_POOL_SIZE: u32 = 16;
/// The largest `--database-pool` accepted.
pub const POOL_SIZE_MAX: u32 = 1024;
/// Taken by every OpenAccount for its transaction, so that the account
/// count it checks against `--max-accounts` cannot change under it.
const OPEN_LOCK: &str = "SELECT pg_advisory_xact_lock(7302829178040561)";
pub use funds::{FUNDS_CHANNEL, RECHECK};

/// How to reach the database and run its transactions.
#[derive(Debug, Clone)]
pub struct DbSettings {
    /// `postgres://user@host:port/db` (libpq key=value strings work too).
    pub url: String,
    /// Connections at most (`--database-pool`).
    pub pool_size: u32,
    /// `--isolation`.
    pub isolation: Isolation,
}

/// The ledger in PostgreSQL, shared by every server on the same database.
#[derive(Debug)]
pub struct PgLedger {
    pool: ClosingPool,
    isolation: Isolation,
    config: LedgerConfig,
    monitors: Monitors,
    funds: Arc<Funds>,
    zoo: zoo::PgZoo,
    /// One-trip ops of any account, gathered into calls (`lane.rs`).
    lane: lane::Lane<one_trip::TripOp, one_trip::TripAnswer>,
}

impl PgLedger {
    /// Connects, migrates the schema (refusing a newer one) and returns the
    /// ledger; `Err` says why it cannot start. Blocks: call it off the async
    /// workers. Returns the schema version found before migrating, too.
    pub fn open(settings: &DbSettings, config: &LedgerConfig) -> Result<(Self, i32), String> {
        if settings.pool_size == 0 || settings.pool_size > POOL_SIZE_MAX {
            return Err(format!("--database-pool must be 1..={POOL_SIZE_MAX}"));
        }
        let config_db = pool::settings(&settings.url)?;
        let mut client = config_db
            .connect(postgres::NoTls)
            .map_err(|e| format!("cannot connect to the ledger database: {e}"))?;
        let found = schema::migrate(&mut client)?;
        drop(client);
        let funds = Arc::new(Funds::default());
        funds::listen(config_db.clone(), &funds);
        let pool = pool::connect(config_db, settings.pool_size, config.observer.clone());
        let lane_call: lane::Call<_, _> = {
            let (pool, retention) = (
                pool.clone(),
                i64::try_from(config.request_id_retention).unwrap_or(i64::MAX),
            );
            Arc::new(move |ops| one_trip::call(&pool, retention, ops))
        };
        id_cap::spawn(pool.clone(), Arc::downgrade(&funds), config.max_request_ids);
        let ledger = PgLedger {
            pool: ClosingPool::new(pool),
            isolation: settings.isolation,
            config: config.clone(),
            monitors: Monitors::new(config.max_accounts),
            funds,
            zoo: zoo::PgZoo::default(),
            lane: lane::Lane::start(lane::LANE_THREADS, lane_call)
                .map_err(|e| format!("cannot start the database lane's threads: {e}"))?,
        };
        Ok((ledger, found))
    }

    /// The ledger's settings (delay, retention, the zoo).
    pub fn config(&self) -> &LedgerConfig {
        &self.config
    }

    /// The isolation level in force.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// Whether `id` is known to exist here (no database call).
    pub fn knows(&self, id: &str) -> bool {
        self.monitors.knows(id)
    }

    /// `id`, if it is known to exist here (no database call).
    pub fn known(&self, id: &str) -> Option<AccountRef> {
        let known = self.monitors.known(id)?;
        Some(AccountRef::new(known.id, known.owner, None))
    }

    /// Accounts this server has seen (opened or used).
    pub fn known_accounts(&self) -> usize {
        self.monitors.count()
    }

    /// `id` as it is in the database (asked once per server and account).
    pub fn account(&self, id: &str) -> LedgerResult<AccountRef> {
        validate_account_id(id)?;
        if let Some(known) = self.known(id) {
            return Ok(known);
        }
        let mut conn = pool::checkout(self.pool.get())?;
        let rows = conn
            .query(Stmt::Exists, &[&id])
            .map_err(|e| pool::unavailable(&e))?;
        let row = rows
            .first()
            .ok_or_else(|| LedgerError::AccountNotFound(id.to_owned()))?;
        let owner: Option<&str> = row.get(0);
        let known = self.monitors.add(id, owner);
        Ok(AccountRef::new(known.id, known.owner, None))
    }

    /// Opens `id` with `balance` (on behalf of `owner`); it takes no
    /// sequence number. `--max-accounts` bounds the accounts in the
    /// database, and `--max-accounts-per-principal` each owner's there, over
    /// every server on it: opens take one advisory lock, so the counts they
    /// check are exact (opens are rare; a count is a scan).
    pub fn open_account(&self, id: &str, balance: u64, owner: Option<&str>) -> LedgerResult<Snapshot> {
        validate_account_id(id)?;
        let text = balance.to_string();
        let max = i64::try_from(self.config.max_accounts).unwrap_or(i64::MAX);
        let per_owner = i64::try_from(self.config.max_accounts_per_principal).unwrap_or(i64::MAX);
        // Read committed whatever --isolation says: the count must see every
        // open committed before the lock was granted.
        txn::run(self.pool.get(), Isolation::ReadCommitted, |tx| {
            tx.tx.batch_execute(OPEN_LOCK).map_err(|e| pool::classify(&e))?;
            let inserted = tx
                .query(Stmt::Open, &[&id, &text, &owner, &max, &per_owner])
                .map_err(|e| pool::classify(&e))?;
            if !inserted.is_empty() {
                return Ok(());
            }
            Err(pool::DbFailure::Ledger(why_not_opened(
                tx,
                id,
                owner,
                (max, per_owner),
            )?))
        })?;
        self.monitors.add(id, owner);
        Ok(Snapshot {
            account_id: id.to_owned(),
            balance,
            sequence: 0,
        })
    }

    /// `GetBalance`: the last committed balance and sequence (no lock: a
    /// read never sees what is not committed, and every op commits before it
    /// answers).
    pub fn balance(&self, id: &str) -> LedgerResult<Snapshot> {
        validate_account_id(id)?;
        if self.config.inject_bug == InjectedBug::StaleRead {
            // BUG (zoo): stale-read answers a snapshot up to 50 ms old.
            return self.zoo.stale_read(id, || self.fresh_balance(id));
        }
        self.fresh_balance(id)
    }

    /// The last committed balance and sequence of `id`.
    fn fresh_balance(&self, id: &str) -> LedgerResult<Snapshot> {
        let mut conn = pool::checkout(self.pool.get())?;
        let row = conn
            .query(Stmt::Balance, &[&id])
            .map_err(|e| pool::unavailable(&e))?
            .into_iter()
            .next()
            .ok_or_else(|| LedgerError::AccountNotFound(id.to_owned()))?;
        let balance: &str = row.get(0);
        let sequence: i64 = row.get(1);
        Ok(Snapshot {
            account_id: id.to_owned(),
            balance: balance
                .parse()
                .map_err(|_| LedgerError::Internal(format!("balance {balance:?} is not a u64")))?,
            sequence: u64::try_from(sequence).unwrap_or(0),
        })
    }

    /// Whether withdrawals take the zoo's lost-update path (no row lock).
    fn racy(&self) -> bool {
        self.config.racy_withdrawals()
    }

    /// The processing delay, held inside the transaction (and the monitor),
    /// as precisely as the in-memory ledger holds it (the same `hold`).
    fn delay(&self) {
        hold_processing_delay(self.config.processing_delay);
    }
}

/// Why an open inserted nothing: the id exists, or a limit (`max` in all,
/// `per_owner` for `owner`) is reached; the messages are memory's.
fn why_not_opened(
    tx: &mut statements::Tx<'_>,
    id: &str,
    owner: Option<&str>,
    (max, per_owner): (i64, i64),
) -> Result<LedgerError, pool::DbFailure> {
    if !tx.query(Stmt::Exists, &[&id])?.is_empty() {
        return Ok(LedgerError::AccountExists(id.to_owned()));
    }
    let row = tx.query(Stmt::Held, &[&owner])?;
    let (total, held): (i64, i64) = row.first().map_or((0, 0), |r| (r.get(0), r.get(1)));
    Ok(LedgerError::LimitReached(match owner {
        Some(owner) if total < max => format!(
            "principal {owner:?} holds {held} accounts; the limit is {per_owner} (--max-accounts-per-principal)"
        ),
        _ => format!("the database holds {total} accounts; the limit is {max} (--max-accounts)"),
    }))
}

/// The bugs of the zoo this backend can plant: all of them (see `zoo`).
pub fn supports(_bug: InjectedBug) -> bool {
    true
}
