//! The SQL of the ledger's rows: lock (or, for the zoo's lost update, merely
//! read) an account row, look request ids up, and write an account's new
//! balance and sequence together with its new request-id records, trimming
//! the oldest past the retention, in one statement. Every write of an op
//! touches its account row, so the row lock orders every change.

use postgres::types::ToSql;
use postgres::Row;

use super::pool::DbFailure;
use super::statements::{Stmt, Tx};
use crate::backend::ledger::{LedgerError, OpResult, Outcome};

/// An account's row as the transaction locked it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountRow {
    pub balance: u64,
    pub sequence: u64,
    /// Request ids remembered and forgotten (retention).
    pub remembered: i64,
    pub forgotten: i64,
}

/// What a request-id record was for (with the amount: its fingerprint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Deposit,
    Withdraw,
    Transfer(String),
    /// `GetOperation` of an unseen id: any later copy is refused.
    Fence,
}

/// A request-id record to write.
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub kind: Kind,
    pub amount: u64,
    pub result: OpResult,
}

/// A request-id record as stored.
#[derive(Debug, Clone)]
pub struct Stored {
    pub kind: Kind,
    pub amount: u64,
    pub result: OpResult,
}

/// Locks `id`'s row (`FOR UPDATE`); `AccountNotFound` without one.
pub fn lock(tx: &mut Tx<'_>, id: &str) -> Result<AccountRow, DbFailure> {
    one_row(tx, Stmt::Lock, id)
}

/// Reads `id`'s row WITHOUT a lock: only the zoo's `lost-update` does this.
pub fn read_unlocked(tx: &mut Tx<'_>, id: &str) -> Result<AccountRow, DbFailure> {
    one_row(tx, Stmt::Read, id)
}

fn one_row(tx: &mut Tx<'_>, s: Stmt, id: &str) -> Result<AccountRow, DbFailure> {
    let row = tx.query_opt(s, &[&id])?;
    let row = row.ok_or_else(|| LedgerError::AccountNotFound(id.to_owned()))?;
    account_row(&row, 0)
}

/// Locks two accounts' rows in id (byte) order, as every server does: two
/// opposite transfers can never deadlock. Returns them as (`a`, `b`).
pub fn lock_two(tx: &mut Tx<'_>, a: &str, b: &str) -> Result<(AccountRow, AccountRow), DbFailure> {
    let ids = vec![a.to_owned(), b.to_owned()];
    let rows = tx.query(Stmt::LockTwo, &[&ids])?;
    let find = |id: &str| -> Result<AccountRow, DbFailure> {
        let row = rows.iter().find(|r| r.get::<_, &str>(0) == id);
        let row = row.ok_or_else(|| LedgerError::AccountNotFound(id.to_owned()))?;
        account_row(row, 1)
    };
    Ok((find(a)?, find(b)?))
}

fn account_row(row: &Row, at: usize) -> Result<AccountRow, DbFailure> {
    Ok(AccountRow {
        balance: money(row.get(at))?,
        sequence: count(row.get(at + 1))?,
        remembered: row.get(at + 2),
        forgotten: row.get(at + 3),
    })
}

/// The stored records of `request_ids` on `account` (empty ids are never stored).
pub fn lookup(tx: &mut Tx<'_>, account: &str, request_ids: &[String]) -> Result<Vec<Stored>, DbFailure> {
    let ids: Vec<&str> = request_ids
        .iter()
        .map(String::as_str)
        .filter(|r| !r.is_empty())
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = tx.query(Stmt::Lookup, &[&account, &ids])?;
    rows.iter().map(|row| stored(row, 0)).collect()
}

/// The record in `row`'s columns from `at` on (request id, kind, target,
/// amount, outcome, balance, sequence, target's balance and sequence).
pub fn stored(row: &Row, at: usize) -> Result<Stored, DbFailure> {
    let kind = match (row.get::<_, i16>(at + 1), row.get::<_, Option<String>>(at + 2)) {
        (0, _) => Kind::Deposit,
        (1, _) => Kind::Withdraw,
        (2, Some(to)) => Kind::Transfer(to),
        (3, _) => Kind::Fence,
        (k, _) => return Err(corrupt(format!("unknown op kind {k}"))),
    };
    let result = OpResult {
        request_id: row.get(at),
        outcome: outcome_of(row.get(at + 4))?,
        balance: money(row.get(at + 5))?,
        sequence: count(row.get(at + 6))?,
        replayed: true,
        to_balance: money(row.get(at + 7))?,
        to_sequence: count(row.get(at + 8))?,
    };
    Ok(Stored {
        kind,
        amount: money(row.get(at + 3))?,
        result,
    })
}

/// Writes `id`'s new `balance` and `sequence` and `records` (keeping at most
/// `retention` request ids: the oldest go).
pub fn write(
    tx: &mut Tx<'_>,
    id: &str,
    row: &AccountRow,
    (balance, sequence): (u64, u64),
    records: &[NewRecord],
    retention: usize,
) -> Result<(), DbFailure> {
    let cols = Columns::of(records);
    let added = i64::try_from(cols.request_id.len()).unwrap_or(i64::MAX);
    let over = row
        .remembered
        .saturating_add(added)
        .saturating_sub(i64::try_from(retention).unwrap_or(i64::MAX));
    let forget = over.clamp(0, row.remembered.max(0));
    let (balance, sequence) = (balance.to_string(), db_count(sequence)?);
    let params: [&(dyn ToSql + Sync); 14] = [
        &id,
        &balance,
        &sequence,
        &added,
        &forget,
        &cols.request_id,
        &cols.kind,
        &cols.to_account,
        &cols.amount,
        &cols.outcome,
        &cols.balance,
        &cols.sequence,
        &cols.to_balance,
        &cols.to_sequence,
    ];
    tx.query(Stmt::Write, &params)?;
    if forget > 0 {
        tx.query(Stmt::Trim, &[&id, &forget])?;
    }
    Ok(())
}

/// Sets `id`'s balance and sequence only (a transfer's target: its record
/// lives with the source).
pub fn set(tx: &mut Tx<'_>, id: &str, (balance, sequence): (u64, u64)) -> Result<(), DbFailure> {
    let (balance, sequence) = (balance.to_string(), db_count(sequence)?);
    tx.query(Stmt::Set, &[&id, &balance, &sequence])?;
    Ok(())
}

/// The records as columns, for `unnest`.
#[derive(Default)]
struct Columns {
    request_id: Vec<String>,
    kind: Vec<i16>,
    to_account: Vec<Option<String>>,
    amount: Vec<String>,
    outcome: Vec<i16>,
    balance: Vec<String>,
    sequence: Vec<i64>,
    to_balance: Vec<String>,
    to_sequence: Vec<i64>,
}

impl Columns {
    fn of(records: &[NewRecord]) -> Self {
        let mut c = Columns::default();
        for r in records.iter().filter(|r| !r.result.request_id.is_empty()) {
            let (kind, to) = match &r.kind {
                Kind::Deposit => (0, None),
                Kind::Withdraw => (1, None),
                Kind::Transfer(to) => (2, Some(to.clone())),
                Kind::Fence => (3, None),
            };
            c.request_id.push(r.result.request_id.clone());
            c.kind.push(kind);
            c.to_account.push(to);
            c.amount.push(r.amount.to_string());
            c.outcome.push(outcome_code(r.result.outcome));
            c.balance.push(r.result.balance.to_string());
            c.sequence
                .push(i64::try_from(r.result.sequence).unwrap_or(i64::MAX));
            c.to_balance.push(r.result.to_balance.to_string());
            c.to_sequence
                .push(i64::try_from(r.result.to_sequence).unwrap_or(i64::MAX));
        }
        c
    }
}

fn outcome_code(outcome: Outcome) -> i16 {
    match outcome {
        Outcome::Approved => 0,
        Outcome::InsufficientFunds => 1,
        Outcome::NotApplied => 2,
    }
}

fn outcome_of(code: i16) -> Result<Outcome, DbFailure> {
    match code {
        0 => Ok(Outcome::Approved),
        1 => Ok(Outcome::InsufficientFunds),
        2 => Ok(Outcome::NotApplied),
        other => Err(corrupt(format!("unknown outcome {other}"))),
    }
}

/// A u64 amount stored as numeric text.
fn money(text: &str) -> Result<u64, DbFailure> {
    text.parse()
        .map_err(|_| corrupt(format!("amount {text:?} is not a u64")))
}

/// A u64 count stored as bigint.
fn count(value: i64) -> Result<u64, DbFailure> {
    u64::try_from(value).map_err(|_| corrupt(format!("negative count {value}")))
}

fn db_count(value: u64) -> Result<i64, DbFailure> {
    i64::try_from(value).map_err(|_| corrupt(format!("sequence {value} does not fit a bigint")))
}

/// Data the binary cannot read: never guessed at.
fn corrupt(why: String) -> DbFailure {
    DbFailure::Ledger(LedgerError::Internal(format!(
        "the ledger database holds data this server cannot read: {why}"
    )))
}
