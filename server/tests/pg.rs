//! The PostgreSQL ledger against a real database (`BANK_TEST_DATABASE_URL`,
//! set by `.ci/postgres.sh`); without it every test here is skipped with a
//! message. Two `PgLedger`s on one database stand for two servers: the row
//! lock must serialize them, and the zoo's `lost-update` (no `FOR UPDATE`)
//! must lose money under read-committed and not under repeatable-read.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use bank_server::backend::ledger::{
    BatchOp, CallContext, Deposit, InjectedBug, LedgerConfig, LedgerError, Outcome, Transfer, Withdrawal,
};
use bank_server::backend::pg::{DbSettings, Isolation, PgLedger, SCHEMA_VERSION};

#[path = "support/pg_url.rs"]
mod pg_url;
use pg_url::url;

fn ledger(url: &str, isolation: Isolation, config: LedgerConfig) -> PgLedger {
    let settings = DbSettings {
        url: url.to_owned(),
        pool_size: 8,
        isolation,
    };
    PgLedger::open(&settings, &config)
        .expect("the test database opens")
        .0
}

fn config(delay_ms: u64) -> LedgerConfig {
    LedgerConfig {
        processing_delay: Duration::from_millis(delay_ms),
        ..LedgerConfig::default()
    }
}

/// A fresh account id (the tables are shared by every test and run).
fn fresh(name: &str) -> String {
    format!("t-{name}-{:016x}", rand::random::<u64>())
}

fn deposit(id: &str, amount: u64, request_id: &str) -> Deposit {
    Deposit {
        account_id: id.to_owned(),
        amount,
        request_id: request_id.to_owned(),
    }
}

fn withdrawal(id: &str, amount: u64, request_id: &str) -> Withdrawal {
    Withdrawal {
        account_id: id.to_owned(),
        amount,
        request_id: request_id.to_owned(),
        wait_for_funds: false,
    }
}

#[test]
fn ops_follow_the_ledger_rules() {
    let Some(url) = url() else { return };
    let db = ledger(&url, Isolation::ReadCommitted, config(0));
    let (a, b) = (fresh("a"), fresh("b"));
    db.open_account(&a, 100, None).unwrap();
    db.open_account(&b, 0, None).unwrap();
    assert!(matches!(
        db.open_account(&a, 1, None),
        Err(LedgerError::AccountExists(_))
    ));
    let ctx = CallContext::detached();
    let d = db.deposit(&deposit(&a, 50, "d1"), &ctx).unwrap();
    assert_eq!(
        (d.outcome, d.balance, d.sequence, d.replayed),
        (Outcome::Approved, 150, 1, false)
    );
    let again = db.deposit(&deposit(&a, 50, "d1"), &ctx).unwrap();
    assert_eq!((again.balance, again.sequence, again.replayed), (150, 1, true));
    let conflict = db.deposit(&deposit(&a, 51, "d1"), &ctx);
    assert!(
        matches!(conflict, Err(LedgerError::RequestIdConflict { .. })),
        "{conflict:?}"
    );
    let mut ctx = CallContext::detached();
    let short = db.withdraw(&withdrawal(&a, 1000, "w1"), &mut ctx).unwrap();
    assert_eq!(
        (short.outcome, short.balance, short.sequence),
        (Outcome::InsufficientFunds, 150, 2)
    );
    let t = Transfer {
        from_account_id: a.clone(),
        to_account_id: b.clone(),
        amount: 30,
        request_id: "t1".into(),
    };
    let moved = db.transfer(&t, &ctx).unwrap();
    assert_eq!(
        (moved.balance, moved.sequence, moved.to_balance, moved.to_sequence),
        (120, 3, 30, 1)
    );
    assert_eq!(db.operation(&a, "t1").unwrap().to_balance, 30);
    let fenced = db.operation(&a, "never-sent").unwrap();
    assert_eq!((fenced.outcome, fenced.replayed), (Outcome::NotApplied, false));
    let late = db.deposit(&deposit(&a, 5, "never-sent"), &ctx).unwrap();
    assert_eq!(
        (late.outcome, late.replayed),
        (Outcome::NotApplied, true),
        "a fenced id never applies"
    );
    let snapshot = db.balance(&a).unwrap();
    assert_eq!((snapshot.balance, snapshot.sequence), (120, 3));
    assert!(matches!(
        db.balance("t-missing"),
        Err(LedgerError::AccountNotFound(_))
    ));
    let missing = db.deposit(&deposit("t-missing", 1, "x"), &ctx);
    assert!(
        matches!(missing, Err(LedgerError::AccountNotFound(_))),
        "{missing:?}"
    );
}

#[test]
fn a_batch_is_one_transaction_with_a_sequence_number_per_op() {
    let Some(url) = url() else { return };
    let db = ledger(&url, Isolation::ReadCommitted, config(1));
    let a = fresh("batch");
    db.open_account(&a, 10, None).unwrap();
    let mut ops = vec![
        (BatchOp::Deposit(deposit(&a, 5, "b1")), CallContext::detached()),
        (
            BatchOp::Withdraw(withdrawal(&a, 100, "b2")),
            CallContext::detached(),
        ),
        (
            BatchOp::Withdraw(withdrawal(&a, 15, "b3")),
            CallContext::detached(),
        ),
        (BatchOp::Deposit(deposit(&a, 5, "b1")), CallContext::detached()),
    ];
    let answers: Vec<_> = db
        .run_batch(&a, &mut ops)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let seen: Vec<_> = answers
        .iter()
        .map(|r| (r.outcome, r.balance, r.sequence))
        .collect();
    assert_eq!(
        seen,
        [
            (Outcome::Approved, 15, 1),
            (Outcome::InsufficientFunds, 15, 2),
            (Outcome::Approved, 0, 3),
            (Outcome::Approved, 15, 1),
        ]
    );
    assert!(answers[3].replayed, "the repeated id is answered from the first");
}

/// The name of `e`'s variant (the account ids differ between runs).
fn variant(e: &LedgerError) -> String {
    let text = format!("{e:?}");
    text.split([' ', '(', '{']).next().unwrap_or_default().to_owned()
}

/// One batch with every kind of answer, on `db` (a fresh account opened with 10).
fn mixed_batch(db: &PgLedger) -> Vec<Result<(Outcome, u64, u64, bool), String>> {
    let a = fresh("mixed");
    db.open_account(&a, 10, None).unwrap();
    db.deposit(&deposit(&a, 1, "old"), &CallContext::detached())
        .unwrap();
    let op = |o: BatchOp| (o, CallContext::detached());
    let mut ops = vec![
        op(BatchOp::Deposit(deposit(&a, 1, "old"))),
        op(BatchOp::Withdraw(withdrawal(&a, 1, "old"))),
        op(BatchOp::Deposit(deposit(&a, u64::MAX, "big"))),
        op(BatchOp::Withdraw(withdrawal(&a, 4, ""))),
        op(BatchOp::Deposit(deposit(&a, 2, "new"))),
        op(BatchOp::Withdraw(withdrawal(&a, 100, "short"))),
        op(BatchOp::Deposit(deposit(&a, 2, "new"))),
    ];
    let answers = db.run_batch(&a, &mut ops);
    let state = db.balance(&a).unwrap();
    let mut seen: Vec<_> = answers
        .into_iter()
        .map(|r| {
            r.map(|r| (r.outcome, r.balance, r.sequence, r.replayed))
                .map_err(|e| variant(&e))
        })
        .collect();
    seen.push(Ok((Outcome::Approved, state.balance, state.sequence, false)));
    seen
}

#[test]
fn a_batch_in_one_round_trip_answers_as_the_transaction_does() {
    let Some(url) = url() else { return };
    let one_trip = mixed_batch(&ledger(&url, Isolation::ReadCommitted, config(0)));
    // Repeatable read never takes one round trip: the transaction path.
    let transaction = mixed_batch(&ledger(&url, Isolation::RepeatableRead, config(0)));
    assert_eq!(one_trip, transaction);
    assert_eq!(one_trip[0], Ok((Outcome::Approved, 11, 1, true)), "a replay");
    assert!(
        one_trip[1].as_ref().is_err_and(|e| e.contains("Conflict")),
        "{:?}",
        one_trip[1]
    );
    assert!(
        one_trip[2].as_ref().is_err_and(|e| e.contains("Overflow")),
        "{:?}",
        one_trip[2]
    );
    assert_eq!(one_trip[3], Ok((Outcome::Approved, 7, 2, false)), "an empty id");
    assert_eq!(
        one_trip[6],
        Ok((Outcome::Approved, 9, 3, true)),
        "a repeat within the batch"
    );
    assert_eq!(
        one_trip[7],
        Ok((Outcome::Approved, 9, 4, false)),
        "the account after it"
    );
}

#[test]
fn a_withdrawal_waits_for_a_deposit_made_through_another_server() {
    let Some(url) = url() else { return };
    let (a, b) = (
        ledger(&url, Isolation::ReadCommitted, config(0)),
        ledger(&url, Isolation::ReadCommitted, config(0)),
    );
    let id = fresh("wait");
    a.open_account(&id, 10, None).unwrap();
    let waiter = {
        let id = id.clone();
        thread::spawn(move || {
            let w = Withdrawal {
                wait_for_funds: true,
                ..withdrawal(&id, 50, "wait-1")
            };
            a.withdraw(&w, &mut CallContext::detached())
        })
    };
    thread::sleep(Duration::from_millis(100));
    assert!(!waiter.is_finished(), "short of funds, it waits");
    let d = b
        .deposit(&deposit(&id, 45, "d-1"), &CallContext::detached())
        .unwrap();
    assert_eq!((d.balance, d.sequence), (55, 1), "the deposit's own answer");
    let done = waiter.join().unwrap().unwrap();
    assert_eq!(
        (done.outcome, done.balance, done.sequence, done.replayed),
        (Outcome::Approved, 5, 2, false)
    );
    // Applied by the deposit (the hand-off), recorded as its own: a copy replays it.
    let w = Withdrawal {
        wait_for_funds: true,
        ..withdrawal(&id, 50, "wait-1")
    };
    let copy = b.withdraw(&w, &mut CallContext::detached()).unwrap();
    assert_eq!(
        copy,
        bank_server::backend::ledger::OpResult {
            replayed: true,
            ..done
        }
    );
    assert_eq!(b.balance(&id).unwrap().sequence, 2);
}

#[test]
fn of_two_copies_waiting_at_once_one_answers_applied_and_the_other_a_replay() {
    let Some(url) = url() else { return };
    let (a, b): (&'static PgLedger, &'static PgLedger) = (
        Box::leak(Box::new(ledger(&url, Isolation::ReadCommitted, config(0)))),
        Box::leak(Box::new(ledger(&url, Isolation::ReadCommitted, config(0)))),
    );
    let id = fresh("copies");
    a.open_account(&id, 0, None).unwrap();
    let copies: Vec<_> = [a, b]
        .into_iter()
        .map(|server| {
            let w = Withdrawal {
                wait_for_funds: true,
                ..withdrawal(&id, 30, "w")
            };
            thread::spawn(move || server.withdraw(&w, &mut CallContext::detached()))
        })
        .collect();
    let patience = std::time::Instant::now() + Duration::from_secs(10);
    while a.waiting_withdrawals() + b.waiting_withdrawals() < 2 {
        assert!(std::time::Instant::now() < patience, "both copies wait");
        thread::sleep(Duration::from_millis(1));
    }
    thread::sleep(Duration::from_millis(50));
    a.deposit(&deposit(&id, 30, "d"), &CallContext::detached())
        .unwrap();
    let answers: Vec<_> = copies.into_iter().map(|c| c.join().unwrap().unwrap()).collect();
    let applied: Vec<_> = answers.iter().filter(|r| !r.replayed).collect();
    assert_eq!(applied.len(), 1, "exactly one copy claims the op: {answers:?}");
    assert_eq!((applied[0].outcome, applied[0].sequence), (Outcome::Approved, 2));
    assert_eq!(a.balance(&id).unwrap().balance, 0, "withdrawn once");
}

#[test]
fn a_handed_off_withdrawal_is_answered_even_if_its_record_was_forgotten_since() {
    let Some(url) = url() else { return };
    drop(ledger(&url, Isolation::ReadCommitted, config(0))); // the schema
    let id = fresh("forgot");
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let wait = "SELECT status, balance, sequence FROM bank_wait($1, 'w', 30, 100, $2, $3)";
    db.execute(
        "INSERT INTO bank_accounts (id, balance, waiting) VALUES ($1, 0, 1)",
        &[&id],
    )
    .unwrap();
    let registered = db.query_one(wait, &[&id, &5_000i64, &0i64]).unwrap();
    let token: i64 = registered.get(2);
    assert_eq!(registered.get::<_, i16>(0), 4, "short: registered");
    db.query(
        "SELECT * FROM bank_single($1, 'd', 0::int2, 30, 100, false)",
        &[&id],
    )
    .unwrap();
    // The deposit applied it; now its record is forgotten (retention, the cap).
    db.execute(
        "DELETE FROM bank_operations WHERE account_id = $1 AND request_id = 'w'",
        &[&id],
    )
    .unwrap();
    let answer = db.query_one(wait, &[&id, &5_000i64, &token]).unwrap();
    let (status, balance, sequence): (i16, String, i64) = (answer.get(0), answer.get(1), answer.get(2));
    assert_eq!(
        (status, balance.as_str(), sequence),
        (6, "0", 2),
        "answered from the registration, once"
    );
    let again = db.query_one(wait, &[&id, &0i64, &token]).unwrap();
    assert_eq!(again.get::<_, i16>(0), 0, "gone: a later look decides anew");
}

#[test]
fn a_waiter_fenced_by_get_operation_is_not_applied_by_the_deposit() {
    let Some(url) = url() else { return };
    let a: &'static PgLedger = Box::leak(Box::new(ledger(&url, Isolation::ReadCommitted, config(0))));
    let id = fresh("fenced");
    a.open_account(&id, 0, None).unwrap();
    let waiter = {
        let w = Withdrawal {
            wait_for_funds: true,
            ..withdrawal(&id, 30, "w")
        };
        thread::spawn(move || a.withdraw(&w, &mut CallContext::detached()))
    };
    while a.waiting_withdrawals() == 0 {
        thread::sleep(Duration::from_millis(1));
    }
    thread::sleep(Duration::from_millis(50)); // registered
    let fence = a.operation(&id, "w").unwrap();
    assert_eq!(fence.outcome, Outcome::NotApplied);
    a.deposit(&deposit(&id, 30, "d"), &CallContext::detached())
        .unwrap();
    let answer = waiter.join().unwrap().unwrap();
    assert_eq!((answer.outcome, answer.replayed), (Outcome::NotApplied, true));
    let state = a.balance(&id).unwrap();
    assert_eq!(
        (state.balance, state.sequence),
        (30, 1),
        "the fenced withdrawal took nothing"
    );
}

#[test]
fn a_waiter_whose_wait_ended_is_never_applied_by_a_later_deposit() {
    let Some(url) = url() else { return };
    let short_wait = LedgerConfig {
        max_wait: Duration::from_millis(200),
        ..config(0)
    };
    let a = ledger(&url, Isolation::ReadCommitted, short_wait);
    let id = fresh("ended");
    a.open_account(&id, 10, None).unwrap();
    let w = Withdrawal {
        wait_for_funds: true,
        ..withdrawal(&id, 50, "w")
    };
    let ended = a.withdraw(&w, &mut CallContext::detached()).unwrap();
    assert_eq!((ended.outcome, ended.balance), (Outcome::InsufficientFunds, 10));
    a.deposit(&deposit(&id, 45, "d"), &CallContext::detached())
        .unwrap();
    let state = a.balance(&id).unwrap();
    assert_eq!(
        (state.balance, state.sequence),
        (55, 2),
        "the ended wait took nothing"
    );
}

#[test]
fn old_request_ids_are_forgotten_past_the_retention() {
    let Some(url) = url() else { return };
    let mut cfg = config(0);
    cfg.request_id_retention = 2;
    let db = ledger(&url, Isolation::ReadCommitted, cfg);
    let a = fresh("retention");
    db.open_account(&a, 0, None).unwrap();
    for i in 0..4 {
        db.deposit(&deposit(&a, 1, &format!("r{i}")), &CallContext::detached())
            .unwrap();
    }
    assert!(db.operation(&a, "r3").unwrap().replayed);
    let lost = db.operation(&a, "r0");
    assert!(
        matches!(lost, Err(LedgerError::OutcomeUnknown { .. })),
        "{lost:?}"
    );
}

/// Two "servers" withdraw `per_thread` × 10 from one account at once;
/// returns (final balance, approved sum, the sequence numbers handed out).
fn race(url: &str, isolation: Isolation, bug: InjectedBug) -> (u64, u64, Vec<u64>) {
    let mut cfg = config(5);
    cfg.inject_bug = bug;
    let servers = [
        Arc::new(ledger(url, isolation, cfg.clone())),
        Arc::new(ledger(url, isolation, cfg)),
    ];
    let id = fresh("race");
    servers[0].open_account(&id, 1_000, None).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (db, id) = (Arc::clone(&servers[t % 2]), id.clone());
            thread::spawn(move || {
                let mut got = Vec::new();
                for i in 0..5 {
                    let w = withdrawal(&id, 10, &format!("w{t}-{i}"));
                    got.push(db.withdraw(&w, &mut CallContext::detached()).unwrap());
                }
                got
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let approved = results.iter().filter(|r| r.outcome == Outcome::Approved).count() as u64 * 10;
    let mut sequences: Vec<u64> = results.iter().map(|r| r.sequence).collect();
    sequences.sort_unstable();
    (servers[1].balance(&id).unwrap().balance, approved, sequences)
}

#[test]
fn two_servers_on_one_database_lose_nothing_under_the_row_lock() {
    let Some(url) = url() else { return };
    let (balance, approved, sequences) = race(&url, Isolation::ReadCommitted, InjectedBug::None);
    assert_eq!(balance + approved, 1_000, "money conserved");
    assert_eq!(
        sequences,
        (1..=20).collect::<Vec<_>>(),
        "one sequence number each"
    );
}

#[test]
fn the_lost_update_bug_loses_money_under_read_committed() {
    let Some(url) = url() else { return };
    let (balance, approved, sequences) = race(&url, Isolation::ReadCommitted, InjectedBug::LostUpdate);
    let mut unique = sequences.clone();
    unique.dedup();
    assert!(
        balance + approved != 1_000 || unique.len() < sequences.len(),
        "without FOR UPDATE two servers must lose an update (balance {balance}, approved {approved}, sequences {sequences:?})"
    );
}

#[test]
fn repeatable_read_turns_the_lost_update_into_retried_conflicts() {
    let Some(url) = url() else { return };
    let (balance, approved, sequences) = race(&url, Isolation::RepeatableRead, InjectedBug::LostUpdate);
    assert_eq!(balance + approved, 1_000, "the conflict is retried, not lost");
    assert_eq!(sequences, (1..=20).collect::<Vec<_>>());
}

#[test]
fn a_database_newer_than_the_binary_is_refused() {
    let Some(url) = url() else { return };
    let Some((base, _db)) = url.rsplit_once('/') else {
        return;
    };
    let name = format!("bank_newer_{:08x}", rand::random::<u32>());
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    let fresh_url = format!("{base}/{name}");
    drop(ledger(&fresh_url, Isolation::ReadCommitted, config(0)));
    let mut client = postgres::Client::connect(&fresh_url, postgres::NoTls).unwrap();
    client
        .execute("UPDATE bank_schema SET version = $1", &[&(SCHEMA_VERSION + 1)])
        .unwrap();
    drop(client);
    let settings = DbSettings {
        url: fresh_url,
        pool_size: 1,
        isolation: Isolation::ReadCommitted,
    };
    let err = PgLedger::open(&settings, &config(0)).unwrap_err();
    assert!(err.contains("newer than this bank-server knows"), "{err}");
    let _ = admin.batch_execute(&format!("DROP DATABASE {name}"));
}

#[test]
fn an_unreachable_database_is_a_clear_startup_error() {
    if url().is_none() {
        return;
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let settings = DbSettings {
        url: format!("postgres://bank@127.0.0.1:{port}/bank"),
        pool_size: 1,
        isolation: Isolation::ReadCommitted,
    };
    let err = PgLedger::open(&settings, &config(0)).unwrap_err();
    assert!(err.contains("cannot connect"), "{err}");
}
