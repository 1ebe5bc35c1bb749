//! A deposit or withdrawal in one round trip to the database: one call of
//! `bank_single` (schema version 3), run as its own transaction (autocommit),
//! instead of BEGIN, lock, look-up, write, COMMIT; the ops of several
//! accounts queued on the lane (`lane.rs`) in one call of `bank_many`
//! (schema version 6), one transaction for all of them. Taken only where the op
//! allows it: no processing delay to hold inside the transaction (the
//! delay simulates work in the critical section: the row stays locked
//! through it, and the pooled connection busy), no bug of the zoo,
//! read-committed isolation, a call not abandoned. Otherwise, or when the
//! database asks for a rerun
//! (serialization failure, deadlock: the call changed nothing), the op runs
//! as a transaction of several statements (`single.rs`). The decision is the
//! same: the function applies the ledger's rules, and a stored record comes
//! back for the server to judge (replay, conflict, fence).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::lane::Touches;
use super::pool::{self, Conn, DbFailure, DbPool};
use super::rows::{self, Kind};
use super::rules::check;
use super::statements::Stmt;
use super::{Isolation, PgLedger};
use crate::backend::ledger::{CallContext, InjectedBug, LedgerError, LedgerResult, OpResult, Transfer};

impl PgLedger {
    /// Whether an op on this ledger may take one round trip now.
    pub(super) fn one_trip_allowed(&self, ctx: &CallContext) -> bool {
        self.config.processing_delay.is_zero()
            && self.config.inject_bug == InjectedBug::None
            && !self.config.racy_withdrawals()
            && self.isolation == Isolation::ReadCommitted
            && !ctx.abandoned()
    }

    /// `kind` (a deposit or withdrawal) of `amount` on `account` under
    /// `request_id`, in one call; `None` when it must run as a transaction.
    /// A withdrawal that may `wait` and is short of funds writes nothing
    /// and comes back as [`Trip::Short`].
    pub(super) fn one_trip(
        &self,
        account: &str,
        request_id: &str,
        (kind, amount): (&Kind, u64),
        wait: bool,
    ) -> Option<LedgerResult<Trip>> {
        let code = match kind {
            Kind::Deposit => DEPOSIT,
            Kind::Withdraw => WITHDRAW,
            _ => return None,
        };
        let op = TripOp::single(
            account,
            request_id,
            (code, amount),
            wait,
            &CallContext::detached(),
        );
        call(self.pool.get(), self.retention(), vec![vec![op]])
            .pop()
            .flatten()
    }

    /// A transfer in one call; `None` when it must run as a transaction.
    pub(super) fn one_trip_transfer(&self, t: &Transfer) -> Option<LedgerResult<OpResult>> {
        let op = TripOp::transfer(t, &CallContext::detached());
        let answer = call(self.pool.get(), self.retention(), vec![vec![op]])
            .pop()
            .flatten()?;
        Some(answer.and_then(Trip::done))
    }

    /// `op` (one that does not wait) in a call with the ops queued beside
    /// it on the lane (`lane.rs`); `None` when it must run the usual way
    /// (its call was abandoned, or the database asked for a rerun).
    pub(super) async fn on_lane(&self, op: TripOp) -> Option<LedgerResult<OpResult>> {
        let answer = match self.lane.submit(op).await {
            Ok(answer) => answer?,
            Err(_) => Err(LedgerError::Internal(
                "the database call carrying the operation failed; it may or may not have been applied".into(),
            )),
        };
        Some(answer.and_then(Trip::done))
    }

    /// `--request-id-retention` as the functions take it.
    pub(super) fn retention(&self) -> i64 {
        i64::try_from(self.config.request_id_retention).unwrap_or(i64::MAX)
    }
}

/// An op's answer from a call: `None` when it must run as a transaction.
pub(super) type TripAnswer = Option<LedgerResult<Trip>>;

/// One round trip for `rounds` of ops (answers round after round):
/// `bank_single` or `bank_transfer` for one op, `bank_many` for several.
/// An op whose call was abandoned before it went is not sent, and answers
/// `None` (its transaction records it as not applied); so does every op
/// when the database asks for a rerun (nothing was written).
pub(super) fn call(pool: &DbPool, retention: i64, rounds: Vec<Vec<TripOp>>) -> Vec<TripAnswer> {
    // Whether each op goes, round after round.
    let mut live = Vec::new();
    let mut sent: Vec<Vec<TripOp>> = Vec::with_capacity(rounds.len());
    for round in rounds {
        let mut going = Vec::with_capacity(round.len());
        for op in round {
            let goes = !op.abandoned(); // read once: a deadline may pass meanwhile
            live.push(goes);
            if goes {
                going.push(op);
            }
        }
        if !going.is_empty() {
            sent.push(going);
        }
    }
    let mut answers = answer_all(pool, retention, &sent).into_iter();
    live.iter()
        .map(|&l| if l { answers.next().flatten() } else { None })
        .collect()
}

fn answer_all(pool: &DbPool, retention: i64, rounds: &[Vec<TripOp>]) -> Vec<TripAnswer> {
    let ops: Vec<&TripOp> = rounds.iter().flatten().collect();
    let every = |answer: &dyn Fn() -> TripAnswer| ops.iter().map(|_| answer()).collect();
    if ops.is_empty() {
        return Vec::new();
    }
    let mut conn = match pool::checkout(pool) {
        Ok(conn) => conn,
        Err(e) => return every(&|| Some(Err(e.clone()))),
    };
    let rows = match ops[..] {
        [op] => query_one(&mut conn, op, retention),
        _ => query_many(&mut conn, rounds, retention),
    };
    let rows = match rows.map_err(|e| pool::classify(&e)) {
        Ok(rows) => rows,
        Err(DbFailure::Retry(_)) => return every(&|| None),
        Err(DbFailure::Ledger(e)) => return every(&|| Some(Err(e.clone()))),
    };
    if rows.len() != ops.len() {
        let why = format!("the database answered {} rows for {} ops", rows.len(), ops.len());
        return every(&|| Some(Err(LedgerError::Internal(why.clone()))));
    }
    ops.iter()
        .zip(&rows)
        .map(|(op, row)| Some(op.answer(row)))
        .collect()
}

/// The kind codes of `bank_single` and `bank_many`.
pub(super) const DEPOSIT: i16 = 0;
pub(super) const WITHDRAW: i16 = 1;
const TRANSFER: i16 = 2;

/// A one-trip op as a call carries it.
#[derive(Debug)]
pub(super) struct TripOp {
    account: String,
    /// The credited account of a transfer.
    to: Option<String>,
    request_id: String,
    code: i16,
    amount: u64,
    /// A withdrawal that may wait: short of funds, it writes nothing.
    wait: bool,
    /// Set when the call's client leaves.
    cancelled: Arc<AtomicBool>,
    deadline: Option<Instant>,
}

impl Touches for TripOp {
    fn touches(&self) -> [Option<&str>; 2] {
        [Some(&self.account), self.to.as_deref()]
    }
}

impl TripOp {
    /// A deposit (`code` 0) or withdrawal (1) of `amount`.
    pub fn single(
        account: &str,
        request_id: &str,
        (code, amount): (i16, u64),
        wait: bool,
        ctx: &CallContext,
    ) -> Self {
        TripOp {
            account: account.to_owned(),
            to: None,
            request_id: request_id.to_owned(),
            code,
            amount,
            wait,
            cancelled: ctx.abandoned_flag(),
            deadline: ctx.deadline(),
        }
    }

    pub fn transfer(t: &Transfer, ctx: &CallContext) -> Self {
        TripOp {
            to: Some(t.to_account_id.clone()),
            code: TRANSFER,
            ..TripOp::single(
                &t.from_account_id,
                &t.request_id,
                (TRANSFER, t.amount),
                false,
                ctx,
            )
        }
    }

    /// Whether nobody will read the answer (as [`CallContext::abandoned`]).
    fn abandoned(&self) -> bool {
        self.cancelled.load(Ordering::Acquire) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// The ledger's answer from this op's row.
    fn answer(&self, row: &postgres::Row) -> LedgerResult<Trip> {
        let kind = match (&self.to, self.code) {
            (Some(to), _) => Kind::Transfer(to.clone()),
            (None, DEPOSIT) => Kind::Deposit,
            (None, _) => Kind::Withdraw,
        };
        answer(&self.account, Some(row), (&kind, self.amount))
    }
}

fn query_one(conn: &mut Conn, op: &TripOp, retention: i64) -> Result<Vec<postgres::Row>, postgres::Error> {
    let amount = op.amount.to_string();
    match &op.to {
        Some(to) => conn.query(
            Stmt::Transfer,
            &[&op.account, to, &op.request_id, &amount, &retention],
        ),
        None => conn.query(
            Stmt::Single,
            &[
                &op.account,
                &op.request_id,
                &op.code,
                &amount,
                &retention,
                &op.wait,
            ],
        ),
    }
}

fn query_many(
    conn: &mut Conn,
    rounds: &[Vec<TripOp>],
    retention: i64,
) -> Result<Vec<postgres::Row>, postgres::Error> {
    let ops = || rounds.iter().flatten();
    let ids: Vec<&str> = ops().map(|o| o.account.as_str()).collect();
    let tos: Vec<Option<&str>> = ops().map(|o| o.to.as_deref()).collect();
    let rids: Vec<&str> = ops().map(|o| o.request_id.as_str()).collect();
    let codes: Vec<i16> = ops().map(|o| o.code).collect();
    let amounts: Vec<String> = ops().map(|o| o.amount.to_string()).collect();
    let waits: Vec<bool> = ops().map(|o| o.wait).collect();
    // Each op's round, counted from 1 (the call holds a few hundred ops at most).
    let round_of: Vec<i32> = rounds
        .iter()
        .enumerate()
        .flat_map(|(r, round)| {
            round
                .iter()
                .map(move |_| i32::try_from(r + 1).unwrap_or(i32::MAX))
        })
        .collect();
    conn.query(
        Stmt::Many,
        &[&ids, &tos, &rids, &codes, &amounts, &waits, &round_of, &retention],
    )
}

/// What one call came to.
#[derive(Debug)]
pub(super) enum Trip {
    Done(OpResult),
    /// A withdrawal that may wait is short of funds; nothing was written.
    Short,
}

impl Trip {
    /// The result of an op that does not wait.
    fn done(self) -> LedgerResult<OpResult> {
        match self {
            Trip::Done(result) => Ok(result),
            Trip::Short => Err(LedgerError::Internal(
                "an op that does not wait came back short".into(),
            )),
        }
    }
}

/// The ledger's answer from `bank_single`'s row.
pub(super) fn answer(
    account: &str,
    row: Option<&postgres::Row>,
    (kind, amount): (&Kind, u64),
) -> LedgerResult<Trip> {
    let row = row.ok_or_else(|| LedgerError::Internal("bank_single answered no row".into()))?;
    let status: i16 = row.get(0);
    let read = |row| rows::stored(row, 1).map_err(ledger_error);
    match status {
        // 6: a waiting withdrawal's record, written for it by a deposit (`hand_off.rs`).
        0 | 6 => Ok(Trip::Done(OpResult {
            replayed: false,
            ..read(row)?.result
        })),
        1 => check(account, read(row)?, kind, amount)
            .map(Trip::Done)
            .map_err(ledger_error),
        4 => Ok(Trip::Short),
        // For a transfer the account named in `to_account` (the missing one, the one that would overflow).
        2 => Err(LedgerError::AccountNotFound(named(row, account))),
        3 => Err(LedgerError::BalanceOverflow {
            account_id: named(row, account),
            amount,
        }),
        other => Err(LedgerError::Internal(format!(
            "bank_single answered status {other}"
        ))),
    }
}

/// The account `row` names in its `to_account` column, else `account`.
fn named(row: &postgres::Row, account: &str) -> String {
    row.get::<_, Option<String>>(3)
        .unwrap_or_else(|| account.to_owned())
}

/// A failure read back from a function's row, as the ledger's error.
pub(super) fn ledger_error(failure: DbFailure) -> LedgerError {
    match failure {
        DbFailure::Ledger(e) => e,
        DbFailure::Retry(why) => LedgerError::Unavailable(why),
    }
}
