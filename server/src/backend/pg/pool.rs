//! The connection pool of the PostgreSQL ledger and the one place where a
//! database error becomes a domain error: a bounded r2d2 pool of sync
//! `postgres` clients, each with a statement timeout, and the classification
//! of failures (retry a serialization failure or deadlock; the database is
//! unreachable: UNAVAILABLE; never an answer without a commit).

use std::str::FromStr;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::NoTls;
use r2d2_postgres::r2d2::{ManageConnection, Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;

use super::statements::{PgConn, Statements};
use crate::backend::ledger::{LedgerError, Observer};

/// The pool.
pub type DbPool = Pool<Manager>;

/// One pooled connection.
pub type Conn = PooledConnection<Manager>;

/// r2d2_postgres's manager, with the ledger's statements prepared on every
/// new connection.
#[derive(Debug)]
pub struct Manager(PostgresConnectionManager<NoTls>, Observer);

impl ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConn, postgres::Error> {
        let mut client = self.0.connect()?;
        let statements = Statements::prepare(&mut client)?;
        Ok(PgConn {
            client,
            statements,
            observer: self.1.clone(),
        })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}

/// The longest a new connection may take to establish.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest an op waits for a free pooled connection before UNAVAILABLE.
pub const POOL_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest one SQL statement may run (row-lock waits included).
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a transaction may sit idle (our processing delay is slept
/// inside it; a server that hangs mid-transaction frees its row locks then).
pub const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// What a database call came to when it failed.
#[derive(Debug)]
pub enum DbFailure {
    /// A serialization failure or deadlock: the transaction rolled back and
    /// may be run again from the start.
    Retry(String),
    /// A ledger answer decided inside the transaction (rolled back).
    Ledger(LedgerError),
}

impl From<LedgerError> for DbFailure {
    fn from(e: LedgerError) -> Self {
        DbFailure::Ledger(e)
    }
}

impl From<postgres::Error> for DbFailure {
    fn from(e: postgres::Error) -> Self {
        classify(&e)
    }
}

/// A failure of the database, as the ledger answers it.
pub fn classify(e: &postgres::Error) -> DbFailure {
    let code = e.code();
    if code == Some(&SqlState::T_R_SERIALIZATION_FAILURE) || code == Some(&SqlState::T_R_DEADLOCK_DETECTED) {
        return DbFailure::Retry(e.to_string());
    }
    DbFailure::Ledger(unavailable(e))
}

/// The database could not be used: UNAVAILABLE, nothing acknowledged.
pub fn unavailable(e: &dyn std::fmt::Display) -> LedgerError {
    LedgerError::Unavailable(format!(
        "the ledger database is unavailable, the operation was not acknowledged (retry it with the same request id, or ask GetOperation): {e}"
    ))
}

/// The connection settings of `url`: statement timeouts, connect timeout.
pub fn settings(url: &str) -> Result<postgres::Config, String> {
    let mut config = postgres::Config::from_str(url).map_err(|e| format!("--database-url: {e}"))?;
    // Generic plans: every statement is a primary-key lookup or write, and a
    // custom plan per execution cost more CPU than running it (measured).
    let options = format!(
        "-c statement_timeout={} -c idle_in_transaction_session_timeout={} -c plan_cache_mode=force_generic_plan",
        STATEMENT_TIMEOUT.as_millis(),
        IDLE_IN_TRANSACTION_TIMEOUT.as_millis()
    );
    config
        .options(&options)
        .connect_timeout(CONNECT_TIMEOUT)
        .application_name("bank-server");
    Ok(config)
}

/// A pool of at most `size` connections with `config` (the schema must
/// exist: every connection prepares the ledger's statements).
pub fn connect(config: postgres::Config, size: u32, observer: Observer) -> DbPool {
    let manager = Manager(PostgresConnectionManager::new(config, NoTls), observer);
    Pool::builder()
        .max_size(size)
        .min_idle(Some(0))
        .connection_timeout(POOL_CHECKOUT_TIMEOUT)
        // A connection the database closed is dropped on return (has_broken);
        // checking each one out with a query would cost a round trip per op.
        .test_on_check_out(false)
        .error_handler(Box::new(QuietErrors))
        .build_unchecked(manager)
}

/// r2d2 logs every failed background connect; one line at debug is enough
/// (an op that cannot get a connection answers UNAVAILABLE and says why).
#[derive(Debug)]
struct QuietErrors;

impl<E: std::fmt::Display> r2d2_postgres::r2d2::HandleError<E> for QuietErrors {
    fn handle_error(&self, error: E) {
        tracing::debug!("database connection failed: {error}");
    }
}

/// The pool, closed off the async workers when dropped: closing a sync
/// client says goodbye to the server and blocks, which must not happen on a
/// thread that drives async tasks (the server drops its ops there).
#[derive(Debug)]
pub struct ClosingPool(Option<DbPool>);

impl ClosingPool {
    pub fn new(pool: DbPool) -> Self {
        ClosingPool(Some(pool))
    }

    /// The pool (it is only taken out while being dropped).
    pub fn get(&self) -> &DbPool {
        self.0
            .as_ref()
            .expect("the pool lives until the ledger is dropped")
    }
}

impl Drop for ClosingPool {
    fn drop(&mut self) {
        let Some(pool) = self.0.take() else { return };
        if tokio::runtime::Handle::try_current().is_ok() {
            let closer = std::thread::Builder::new().name("pg-close".into());
            // If no thread can be made, the connections are left to the OS.
            if let Err(e) = closer.spawn(move || drop(pool)) {
                tracing::warn!("database connections not closed cleanly: {e}");
            }
        }
    }
}

/// A connection from `pool`, or UNAVAILABLE when none comes in time.
pub fn checkout(pool: &DbPool) -> Result<Conn, LedgerError> {
    pool.get().map_err(|e| unavailable(&e))
}
