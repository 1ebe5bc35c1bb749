//! `bank_many` (schema version 6, the lane's call) against the one-op
//! functions it must agree with, on a real database
//! (`BANK_TEST_DATABASE_URL`; skipped without it). The same seeded script
//! of deposits, withdrawals and transfers (replays, conflicts, declines,
//! overflows, missing accounts, empty request ids, forgetting past a small
//! retention) runs twice: one op per call of `bank_single`/`bank_transfer`
//! on one set of accounts, and in batches of `bank_many` on a copy, in
//! rounds as the lane forms them (its set-wise path: no account twice in a
//! round) and all in one round (its op-by-op path when an account repeats).
//! Every answer row, every account row and every stored record must match.

use std::time::Duration;

use bank_server::backend::ledger::LedgerConfig;
use bank_server::backend::pg::{DbSettings, Isolation, PgLedger};
use postgres::types::Type;
use postgres::{Client, NoTls, Row};

#[path = "support/pg_url.rs"]
mod pg_url;
use pg_url::url;

const ACCOUNTS: usize = 6;
const RETENTION: i64 = 3;

/// One op of the script, on account indexes (`ACCOUNTS` names a missing one).
#[derive(Debug, Clone)]
struct Op {
    from: usize,
    to: Option<usize>,
    rid: String,
    kind: i16,
    amount: u64,
    /// Its round in a `bank_many` call (from 1).
    round: i32,
}

/// A small seeded generator: the script is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn script(rng: &mut Lcg, ops: usize) -> Vec<Vec<Op>> {
    let mut batches = Vec::new();
    let mut made: Vec<(usize, String)> = Vec::new();
    let mut n = 0;
    while n < ops {
        let size = 1 + rng.below(8) as usize;
        let mut batch = Vec::new();
        for i in n..n + size {
            // Request ids made earlier in this batch too: a replay a round later.
            let op = one_op(rng, &made, i);
            if !op.rid.is_empty() {
                made.push((op.from, op.rid.clone()));
            }
            batch.push(op);
        }
        n += size;
        if rng.below(3) != 0 {
            in_rounds(&mut batch);
        }
        batches.push(batch);
    }
    batches
}

/// Rounds as the lane forms them (an op one round after the last of its
/// accounts'), the ops sorted round after round; else all in round 1.
fn in_rounds(batch: &mut [Op]) {
    let mut last = std::collections::HashMap::new();
    for op in batch.iter_mut() {
        let touched = [Some(op.from), op.to];
        let round = touched
            .iter()
            .flatten()
            .filter_map(|a| last.get(a))
            .max()
            .map_or(1, |r| r + 1);
        for a in touched.iter().flatten() {
            last.insert(*a, round);
        }
        op.round = round;
    }
    batch.sort_by_key(|op| op.round);
}

fn one_op(rng: &mut Lcg, made: &[(usize, String)], n: usize) -> Op {
    // Now and then the missing account.
    let account = |rng: &mut Lcg| {
        if rng.below(40) == 0 {
            ACCOUNTS
        } else {
            rng.below(ACCOUNTS as u64) as usize
        }
    };
    let from = account(rng);
    let kind = rng.below(3) as i16;
    let to = (kind == 2).then(|| (from + 1 + rng.below(ACCOUNTS as u64 - 1) as usize) % (ACCOUNTS + 1));
    let rid = match rng.below(10) {
        0 => String::new(),
        1 if !made.is_empty() => made[rng.below(made.len() as u64) as usize].1.clone(),
        _ => format!("r{n}"),
    };
    let amount = match rng.below(20) {
        0 => u64::MAX - 3, // an overflow on most accounts
        _ => 1 + rng.below(80),
    };
    Op {
        from,
        to,
        rid,
        kind,
        amount,
        round: 1,
    }
}

fn name(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i}")
}

/// One row, every column as text, with the prefix taken out of account names.
fn answer(row: &Row, prefix: &str) -> String {
    let cols: Vec<String> = (0..row.len())
        .map(|i| match *row.columns()[i].type_() {
            Type::INT2 => format!("{:?}", row.get::<_, Option<i16>>(i)),
            Type::INT8 => format!("{:?}", row.get::<_, Option<i64>>(i)),
            _ => format!("{:?}", row.get::<_, Option<String>>(i)),
        })
        .collect();
    cols.join(" ").replace(prefix, "P")
}

fn one_by_one(client: &mut Client, prefix: &str, op: &Op) -> String {
    let from = name(prefix, op.from);
    let amount = op.amount.to_string();
    let rows = match op.to {
        Some(to) => client.query(
            "SELECT * FROM bank_transfer($1, $2, $3, $4::text::numeric, $5)",
            &[&from, &name(prefix, to), &op.rid, &amount, &RETENTION],
        ),
        None => client.query(
            "SELECT * FROM bank_single($1, $2, $3, $4::text::numeric, $5, false)",
            &[&from, &op.rid, &op.kind, &amount, &RETENTION],
        ),
    }
    .expect("a one-op call");
    assert_eq!(rows.len(), 1);
    answer(&rows[0], prefix)
}

fn many(client: &mut Client, prefix: &str, batch: &[Op]) -> Vec<String> {
    let ids: Vec<String> = batch.iter().map(|o| name(prefix, o.from)).collect();
    let tos: Vec<Option<String>> = batch.iter().map(|o| o.to.map(|t| name(prefix, t))).collect();
    let rids: Vec<&str> = batch.iter().map(|o| o.rid.as_str()).collect();
    let kinds: Vec<i16> = batch.iter().map(|o| o.kind).collect();
    let amounts: Vec<String> = batch.iter().map(|o| o.amount.to_string()).collect();
    let waits = vec![false; batch.len()];
    let rounds: Vec<i32> = batch.iter().map(|o| o.round).collect();
    let rows = client
        .query(
            "SELECT * FROM bank_many($1, $2, $3, $4, $5::text[]::numeric[], $6, $7, $8)",
            &[&ids, &tos, &rids, &kinds, &amounts, &waits, &rounds, &RETENTION],
        )
        .expect("a bank_many call");
    rows.iter().map(|r| answer(r, prefix)).collect()
}

/// Every account row and stored record of `prefix`'s accounts.
fn state(client: &mut Client, prefix: &str) -> Vec<String> {
    let pattern = format!("{prefix}-%");
    let accounts = client
        .query(
            "SELECT id, balance::text, sequence, remembered, forgotten, waiting::int8 FROM bank_accounts WHERE id LIKE $1 ORDER BY id",
            &[&pattern],
        )
        .unwrap();
    let records = client
        .query(
            "SELECT account_id, request_id, kind, to_account, amount::text, outcome, balance::text, sequence,
                to_balance::text, to_sequence FROM bank_operations WHERE account_id LIKE $1
             ORDER BY account_id, position",
            &[&pattern],
        )
        .unwrap();
    let a = accounts.iter().map(|r| answer(r, prefix));
    let o = records.iter().map(|r| answer(r, prefix));
    a.chain(o).collect()
}

#[test]
fn bank_many_answers_and_writes_as_one_op_per_call_does() {
    let Some(url) = url() else { return };
    // Opening a ledger migrates the schema.
    let settings = DbSettings {
        url: url.clone(),
        pool_size: 1,
        isolation: Isolation::ReadCommitted,
    };
    let config = LedgerConfig {
        processing_delay: Duration::ZERO,
        ..LedgerConfig::default()
    };
    drop(PgLedger::open(&settings, &config).expect("the test database opens"));
    let mut client = Client::connect(&url, NoTls).expect("a connection");
    let run = format!("many{:08x}", rand::random::<u32>());
    let (one, batched) = (format!("{run}o"), format!("{run}b"));
    for prefix in [&one, &batched] {
        for i in 0..ACCOUNTS {
            // The last account starts near the top: credits overflow there.
            let balance = if i == ACCOUNTS - 1 {
                (u64::MAX - 10).to_string()
            } else {
                "100".into()
            };
            client
                .execute(
                    "INSERT INTO bank_accounts (id, balance) VALUES ($1, $2::text::numeric)",
                    &[&name(prefix, i), &balance],
                )
                .unwrap();
        }
    }
    let batches = script(&mut Lcg(7), 400);
    assert!(
        batches.iter().any(|b| b.iter().any(|o| o.round > 2)),
        "the script has rounds"
    );
    for (n, batch) in batches.iter().enumerate() {
        let expected: Vec<String> = batch.iter().map(|op| one_by_one(&mut client, &one, op)).collect();
        let got = many(&mut client, &batched, batch);
        assert_eq!(got, expected, "batch {n}: {batch:?}");
    }
    assert_eq!(state(&mut client, &batched), state(&mut client, &one));
}
