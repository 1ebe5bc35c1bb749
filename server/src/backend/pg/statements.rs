//! The ledger's SQL, prepared once on every pooled connection (parsed and
//! planned once, not per op: at zero delay planning the write was most of
//! PostgreSQL's CPU per op), and the two handles that run it: a pooled
//! connection ([`PgConn`], autocommit) and a transaction on one ([`Tx`]).

use std::time::Instant;

use postgres::types::{ToSql, Type};
use postgres::{Client, Row, Statement, Transaction};

use crate::backend::ledger::Observer;

/// One statement of the ledger.
#[derive(Debug, Clone, Copy)]
pub enum Stmt {
    Lock,
    Read,
    LockTwo,
    Lookup,
    Write,
    Trim,
    Set,
    Balance,
    Exists,
    Open,
    Held,
    Single,
    Waiting,
    Transfer,
    Batch,
    Wait,
    Many,
}

const LOCK: &str =
    "SELECT balance::text, sequence, remembered, forgotten FROM bank_accounts WHERE id = $1 FOR UPDATE";
const READ: &str = "SELECT balance::text, sequence, remembered, forgotten FROM bank_accounts WHERE id = $1";
const LOCK_TWO: &str = "SELECT id, balance::text, sequence, remembered, forgotten FROM bank_accounts
    WHERE id = ANY($1) ORDER BY id COLLATE \"C\" FOR UPDATE";
const LOOKUP: &str = "SELECT request_id, kind, to_account, amount::text, outcome, balance::text, sequence,
    to_balance::text, to_sequence FROM bank_operations WHERE account_id = $1 AND request_id = ANY($2)";
/// $1 account, $2 balance, $3 sequence, $4 records added, $5 oldest to forget, $6.. the records.
const WRITE: &str = "WITH acct AS (
    UPDATE bank_accounts SET balance = $2::numeric, sequence = $3,
        remembered = remembered + $4 - $5, forgotten = forgotten + $5 WHERE id = $1
)
INSERT INTO bank_operations (account_id, request_id, kind, to_account, amount, outcome,
    balance, sequence, to_balance, to_sequence)
SELECT $1, r, k, t, a::numeric, o, b::numeric, s, tb::numeric, ts FROM unnest($6::text[], $7::int2[],
    $8::text[], $9::text[], $10::int2[], $11::text[], $12::int8[], $13::text[], $14::int8[])
    AS x(r, k, t, a, o, b, s, tb, ts)";
/// Forgets the `$2` oldest request ids of `$1` (only run when there are some to forget:
/// most writes have none, and this plan is the dearest part of a write).
const TRIM: &str = "DELETE FROM bank_operations WHERE account_id = $1 AND position IN (
    SELECT position FROM bank_operations WHERE account_id = $1 ORDER BY position LIMIT $2)";
const SET: &str = "UPDATE bank_accounts SET balance = $2::numeric, sequence = $3 WHERE id = $1";
const BALANCE: &str = "SELECT balance::text, sequence FROM bank_accounts WHERE id = $1";
/// The account's owner (NULL without tokens); no row when it does not exist.
const EXISTS: &str = "SELECT owner FROM bank_accounts WHERE id = $1";
/// $3 the owner (NULL without tokens), $4 `--max-accounts`, $5
/// `--max-accounts-per-principal`; no row when the id exists, the database
/// holds $4 accounts, or the owner $5.
const OPEN: &str = "INSERT INTO bank_accounts (id, balance, owner)
    SELECT $1, $2::numeric, $3 WHERE (SELECT count(*) FROM bank_accounts) < $4
        AND ($3::text IS NULL OR (SELECT count(*) FROM bank_accounts WHERE owner = $3) < $5)
    ON CONFLICT (id) DO NOTHING RETURNING 1";
/// A deposit or withdrawal in one round trip (schema version 3, `one_trip.rs`).
const SINGLE: &str = "SELECT * FROM bank_single($1, $2, $3, $4::numeric, $5, $6)";
/// A transfer in one round trip (schema version 3, `one_trip.rs`).
const TRANSFER: &str = "SELECT * FROM bank_transfer($1, $2, $3, $4::numeric, $5)";
/// A batch of one account's deposits and withdrawals in one round trip (schema version 4,
/// `batch_trip.rs`).
const BATCH: &str = "SELECT * FROM bank_batch($1, $2, $3, $4::numeric[], $5, $6)";
/// A waiting withdrawal's look, registering it for the hand-off (schema version 5,
/// `hand_off.rs`).
const WAIT: &str = "SELECT * FROM bank_wait($1, $2, $3::numeric, $4, $5, $6)";
/// The one-trip ops of several accounts in one round trip (schema version 6, `gather.rs`).
const MANY: &str = "SELECT * FROM bank_many($1, $2, $3, $4, $5::numeric[], $6, $7, $8)";
/// Counts `$2` (+1 or -1) withdrawals waiting for funds on `$1` (so that its credits notify).
/// Committed without waiting for the WAL's flush (`synchronous_commit` off for this
/// statement's transaction alone): the count is a hint for the trigger, never an answer,
/// and the count down runs after a waiter's op committed, before its answer goes out:
/// a second flush there cost the waiter a whole fsync (≈ 4 ms on this host's disk).
/// Lost in a crash, a count only makes the credits notify when nobody waits (or, too
/// low, the listener's reconnect wakes everyone, and waiters look again every second).
const WAITING: &str = "WITH lazy AS (SELECT set_config('synchronous_commit', 'off', true))
    UPDATE bank_accounts SET waiting = greatest(waiting + $2, 0) FROM lazy WHERE id = $1";
/// Accounts in the database, and those `$1` holds.
const HELD: &str = "SELECT count(*), count(*) FILTER (WHERE owner = $1) FROM bank_accounts";

/// Each statement's SQL and parameter types, in [`Stmt`] order.
fn all() -> [(&'static str, Vec<Type>); 17] {
    use Type as T;
    let write = [
        vec![T::TEXT, T::TEXT, T::INT8, T::INT8, T::INT8],
        vec![
            T::TEXT_ARRAY,
            T::INT2_ARRAY,
            T::TEXT_ARRAY,
            T::TEXT_ARRAY,
            T::INT2_ARRAY,
        ],
        vec![T::TEXT_ARRAY, T::INT8_ARRAY, T::TEXT_ARRAY, T::INT8_ARRAY],
    ]
    .concat();
    [
        (LOCK, vec![T::TEXT]),
        (READ, vec![T::TEXT]),
        (LOCK_TWO, vec![T::TEXT_ARRAY]),
        (LOOKUP, vec![T::TEXT, T::TEXT_ARRAY]),
        (WRITE, write),
        (TRIM, vec![T::TEXT, T::INT8]),
        (SET, vec![T::TEXT, T::TEXT, T::INT8]),
        (BALANCE, vec![T::TEXT]),
        (EXISTS, vec![T::TEXT]),
        (OPEN, vec![T::TEXT, T::TEXT, T::TEXT, T::INT8, T::INT8]),
        (HELD, vec![T::TEXT]),
        (SINGLE, vec![T::TEXT, T::TEXT, T::INT2, T::TEXT, T::INT8, T::BOOL]),
        (WAITING, vec![T::TEXT, T::INT4]),
        (TRANSFER, vec![T::TEXT, T::TEXT, T::TEXT, T::TEXT, T::INT8]),
        (
            BATCH,
            vec![
                T::TEXT,
                T::TEXT_ARRAY,
                T::INT2_ARRAY,
                T::TEXT_ARRAY,
                T::BOOL_ARRAY,
                T::INT8,
            ],
        ),
        (WAIT, vec![T::TEXT, T::TEXT, T::TEXT, T::INT8, T::INT8, T::INT8]),
        (
            MANY,
            vec![
                T::TEXT_ARRAY,
                T::TEXT_ARRAY,
                T::TEXT_ARRAY,
                T::INT2_ARRAY,
                T::TEXT_ARRAY,
                T::BOOL_ARRAY,
                T::INT4_ARRAY,
                T::INT8,
            ],
        ),
    ]
}

/// The statements prepared on one connection.
pub struct Statements(Vec<Statement>);

impl Statements {
    /// Prepares every statement on `client` (the schema must exist).
    pub fn prepare(client: &mut Client) -> Result<Self, postgres::Error> {
        let prepared = all()
            .into_iter()
            .map(|(sql, types)| client.prepare_typed(sql, &types));
        Ok(Statements(prepared.collect::<Result<_, _>>()?))
    }

    fn get(&self, s: Stmt) -> &Statement {
        // Built from `all()`, one per `Stmt`, in order: the index is always there.
        &self.0[s as usize]
    }
}

/// A pooled connection and its prepared statements.
pub struct PgConn {
    pub client: Client,
    pub statements: Statements,
    /// Where statement latencies go (`bank_db_statement_seconds`).
    pub observer: Observer,
}

impl PgConn {
    /// Runs `s` outside a transaction (autocommit).
    pub fn query(&mut self, s: Stmt, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, postgres::Error> {
        let statement = self.statements.get(s).clone();
        let started = Instant::now();
        let rows = self.client.query(&statement, params);
        self.observer.db_statement(started.elapsed());
        rows
    }
}

/// A ledger transaction: the database's, with the connection's statements.
pub struct Tx<'a> {
    pub tx: Transaction<'a>,
    pub statements: &'a Statements,
    pub observer: &'a Observer,
}

impl Tx<'_> {
    /// Runs `s` in the transaction.
    pub fn query(&mut self, s: Stmt, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, postgres::Error> {
        let started = Instant::now();
        let rows = self.tx.query(self.statements.get(s), params);
        self.observer.db_statement(started.elapsed());
        rows
    }

    /// Runs `s`, which returns at most one row.
    pub fn query_opt(
        &mut self,
        s: Stmt,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        let started = Instant::now();
        let row = self.tx.query_opt(self.statements.get(s), params);
        self.observer.db_statement(started.elapsed());
        row
    }
}
