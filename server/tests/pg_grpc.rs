//! Two bank-servers on one PostgreSQL database over gRPC
//! (`BANK_TEST_DATABASE_URL`, set by `.ci/postgres.sh`; skipped with a
//! message without it): any server answers any call on any account, a
//! GetOperation fence set through one server holds on the other, group
//! commit hands out one sequence number per op, and an unreachable database
//! fails startup clearly.

#[allow(dead_code, unused_imports)]
mod common;

use bank_server::backend::pg::{DbSettings, Isolation};
use common::*;

#[path = "support/pg_url.rs"]
mod pg_url;
use pg_url::url;

async fn server_on(url: &str, batch_max: usize) -> TestServer {
    let url = url.to_owned();
    start(config(move |c| {
        c.ledger.batch_max = batch_max;
        c.database = Some(DbSettings {
            url,
            pool_size: 4,
            isolation: Isolation::ReadCommitted,
        });
    }))
    .await
}

fn fresh(name: &str) -> String {
    format!("g-{name}-{:016x}", rand::random::<u64>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_server_answers_for_any_account() {
    let Some(url) = url() else { return };
    let (mut a, mut b) = (server_on(&url, 1).await, server_on(&url, 1).await);
    let (x, y) = (fresh("x"), fresh("y"));
    ok(a.bank.open_account(open_req(&x, 100)).await);
    ok(a.bank.open_account(open_req(&y, 0)).await);
    assert_eq!(
        code(b.bank.open_account(open_req(&x, 1)).await),
        Code::AlreadyExists
    );
    let d = ok(b.bank.deposit(deposit(&x, 5, "d1")).await);
    assert_eq!((d.balance, d.sequence), (105, 1));
    assert_eq!(state(&mut a.bank, &x).await, (105, 1), "A reads what B committed");
    let replay = ok(a.bank.get_operation(get_op(&x, "d1")).await);
    assert_eq!((replay.balance, replay.sequence, replay.replayed), (105, 1, true));
    let t = ok(a.bank.transfer(transfer(&x, &y, 30, "t1")).await);
    assert_eq!(
        (t.balance, t.sequence, t.to_balance, t.to_sequence),
        (75, 2, 30, 1)
    );
    let fenced = ok(b.bank.get_operation(get_op(&x, "late")).await);
    assert_eq!(fenced.outcome, Outcome::NotApplied as i32);
    let late = ok(a.bank.deposit(deposit(&x, 1, "late")).await);
    assert_eq!(
        (late.outcome, late.replayed),
        (Outcome::NotApplied as i32, true),
        "fenced on B, refused on A"
    );
    assert_eq!(
        code(b.bank.deposit(deposit(&fresh("none"), 1, "n")).await),
        Code::NotFound
    );
    for s in [a, b] {
        let mut s = s;
        s.trigger_shutdown();
        s.stopped().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_gives_each_op_its_own_sequence_number() {
    let Some(url) = url() else { return };
    let mut server = server_on(&url, 16).await;
    let x = fresh("batch");
    ok(server.bank.open_account(open_req(&x, 0)).await);
    let calls = (0..40).map(|i| {
        let mut bank = server.bank.clone();
        let x = x.clone();
        tokio::spawn(async move { ok(bank.deposit(deposit(&x, 1, &format!("b{i}"))).await) })
    });
    let mut sequences = Vec::new();
    for call in calls {
        sequences.push(call.await.unwrap().sequence);
    }
    sequences.sort_unstable();
    assert_eq!(sequences, (1..=40).collect::<Vec<_>>());
    assert_eq!(state(&mut server.bank, &x).await, (40, 40));
    server.trigger_shutdown();
    server.stopped().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_fails_startup_clearly() {
    if url().is_none() {
        return;
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = config(|c| {
        c.database = Some(DbSettings {
            url: format!("postgres://bank@127.0.0.1:{port}/bank"),
            pool_size: 1,
            isolation: Isolation::ReadCommitted,
        })
    });
    let err = bank_server::run(listener, config, std::future::pending()).await;
    let err = err.expect_err("no database, no server").to_string();
    assert!(err.contains("cannot connect to the ledger database"), "{err}");
}

/// A server on the database whose `--max-accounts` is `max`.
async fn capped_server_on(url: &str, max: usize) -> TestServer {
    let url = url.to_owned();
    start(config(move |c| {
        c.ledger.max_accounts = max;
        c.ledger.max_accounts_per_principal = max;
        c.database = Some(DbSettings {
            url,
            pool_size: 2,
            isolation: Isolation::Serializable,
        });
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_accounts_bounds_the_accounts_in_the_database() {
    let Some(url) = url() else { return };
    let mut any = server_on(&url, 1).await;
    let held = fresh("held");
    ok(any.bank.open_account(open_req(&held, 1)).await);
    // The database holds at least one account: a server capped at one opens none.
    let mut capped = capped_server_on(&url, 1).await;
    let refused = capped
        .bank
        .open_account(open_req(&fresh("new"), 1))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("--max-accounts"),
        "{}",
        refused.message()
    );
    assert_eq!(
        code(capped.bank.open_account(open_req(&held, 1)).await),
        Code::AlreadyExists,
        "an id taken is told first"
    );
    assert_eq!(state(&mut capped.bank, &held).await, (1, 0), "reads go on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_character_in_an_id_is_invalid_argument_as_in_memory() {
    let Some(url) = url() else { return };
    let mut server = server_on(&url, 1).await;
    let bank = &mut server.bank;
    let a = fresh("a");
    ok(bank.open_account(open_req(&a, 10)).await);
    for bad in ["nul\0id", "bell\u{7}", "c1\u{9f}"] {
        let answers = [
            code(bank.open_account(open_req(bad, 1)).await),
            code(bank.get_balance(get_balance(bad)).await),
            code(bank.deposit(deposit(bad, 1, "r")).await),
            code(bank.deposit(deposit(&a, 1, bad)).await),
            code(bank.withdraw(withdraw(&a, 1, bad)).await),
            code(bank.transfer(transfer(&a, bad, 1, "r")).await),
            code(bank.get_operation(get_op(&a, bad)).await),
            code(bank.get_operation(get_op(bad, "r")).await),
        ];
        for (i, got) in answers.into_iter().enumerate() {
            assert_eq!(got, Code::InvalidArgument, "{bad:?}, call {i}");
        }
    }
    assert_eq!(state(bank, &a).await, (10, 0), "nothing was applied");
}
