//! Principals with `--auth-tokens`: an answer never tells a caller whether
//! an account it does not own exists (PERMISSION_DENIED either way, but
//! OpenAccount's ALREADY_EXISTS and a transfer target's NOT_FOUND), and
//! `--max-accounts-per-principal` counts an owner's accounts across a
//! restart on `--data-dir`. The quota itself and the control-character rule
//! are contract tests, run on every backend (`backends.rs`).

#[allow(dead_code, unused_imports)]
mod common;

use std::path::Path;

use common::*;
use tonic::metadata::MetadataValue;

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-9876543210";

/// `message` sent with `authorization: Bearer token`.
fn as_<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    request
}

/// A token file naming alice and bob in `dir`.
fn tokens(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("tokens");
    std::fs::write(&path, format!("alice {ALICE}\nbob {BOB}\n")).unwrap();
    path
}

/// What bob hears on every RPC that names `id` as the account he acts on.
async fn bob_on(bank: &mut Bank, id: &str) -> Vec<(&'static str, Code)> {
    let stream = tokio_stream::iter([withdraw(id, 1, "s1")]);
    let streamed = match bank.withdraw_stream(as_(BOB, stream)).await {
        Ok(answers) => answers.into_inner().message().await.map(|_| ()),
        Err(status) => Err(status),
    };
    vec![
        (
            "GetBalance",
            code(bank.get_balance(as_(BOB, get_balance(id))).await),
        ),
        (
            "Deposit",
            code(bank.deposit(as_(BOB, deposit(id, 1, "d1"))).await),
        ),
        (
            "Withdraw",
            code(bank.withdraw(as_(BOB, withdraw(id, 1, "w1"))).await),
        ),
        ("WithdrawStream", code(streamed)),
        (
            "Transfer",
            code(bank.transfer(as_(BOB, transfer(id, "b", 1, "t1"))).await),
        ),
        (
            "GetOperation",
            code(bank.get_operation(as_(BOB, get_op(id, "o1"))).await),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_principals_account_and_no_account_get_the_same_answer() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = tokens(dir.path());
    let mut server = start(config(|c| c.auth_tokens = Some(tokens))).await;
    let bank = &mut server.bank;
    ok(bank.open_account(as_(ALICE, open_req("a", 100))).await);
    ok(bank.open_account(as_(BOB, open_req("b", 100))).await);
    let existing = bob_on(bank, "a").await;
    let missing = bob_on(bank, "nobody").await;
    assert_eq!(existing, missing, "existence must not show");
    for (method, got) in existing {
        assert_eq!(got, Code::PermissionDenied, "{method}");
    }
    let denied = bank
        .get_balance(as_(BOB, get_balance("nobody")))
        .await
        .unwrap_err();
    assert!(!denied.message().contains("exist"), "{}", denied.message());
    // Documented exceptions: an id is taken or not, and a transfer's target
    // may be anyone's, so its absence is told.
    assert_eq!(
        code(bank.open_account(as_(BOB, open_req("a", 1))).await),
        Code::AlreadyExists
    );
    let to_nobody = bank.transfer(as_(BOB, transfer("b", "nobody", 1, "t2"))).await;
    assert_eq!(code(to_nobody), Code::NotFound);
    assert_eq!(
        ok(bank.get_balance(as_(ALICE, get_balance("a"))).await).balance,
        100
    );
    // Alice hears the same for an id nobody holds: it is not hers either.
    assert_eq!(
        code(bank.get_balance(as_(ALICE, get_balance("nobody"))).await),
        Code::PermissionDenied
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_counts_recovered_accounts_for_their_owner() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = tokens(dir.path());
    let data = dir.path().join("data");
    let durable = |c: &mut bank_server::ServerConfig| {
        c.auth_tokens = Some(tokens.clone());
        c.data_dir = Some(data.clone());
        c.ledger.max_accounts = 10;
        c.ledger.max_accounts_per_principal = 2;
    };
    let mut server = start(config(durable)).await;
    ok(server.bank.open_account(as_(BOB, open_req("b0", 1))).await);
    ok(server.bank.open_account(as_(BOB, open_req("b1", 1))).await);
    server.trigger_shutdown();
    server.stopped().await.unwrap();
    let mut server = start(config(durable)).await;
    let bank = &mut server.bank;
    assert_eq!(
        code(bank.open_account(as_(BOB, open_req("b2", 1))).await),
        Code::ResourceExhausted,
        "bob's recovered accounts count"
    );
    ok(bank.open_account(as_(ALICE, open_req("a0", 1))).await);
    server.trigger_shutdown();
    server.stopped().await.unwrap();
}
