//! SIGHUP reloads `--auth-tokens`: a token added to the file works after the
//! signal, a removed one stops working, and a broken file keeps the old
//! tokens; an open WithdrawStream whose token was removed or now names
//! another principal ends UNAUTHENTICATED at its next message, applying
//! nothing more. (Its own test binary: the signal goes to the whole process.)

#![cfg(unix)]

#[allow(dead_code, unused_imports)]
mod common;

use std::time::Duration;

use common::*;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::Streaming;

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-9876543210";
const DAVE: &str = "dave-token-5555555555";

/// `message` sent with `authorization: Bearer token`.
fn with_token<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    request
}

/// Replaces the token file at once (a rename): the other test's SIGHUP may
/// reload it at any moment and must never see it half written.
fn write_file(path: &std::path::Path, text: impl AsRef<[u8]>) {
    let fresh = path.with_extension("new");
    std::fs::write(&fresh, text).unwrap();
    std::fs::rename(&fresh, path).unwrap();
}

/// A GetBalance of `id` sent with `token`.
fn as_(token: &str, id: &str) -> Request<GetBalanceRequest> {
    with_token(token, get_balance(id))
}

/// Sends SIGHUP to this process, then waits until `bank` answers `token` with `want`.
async fn hangup_until(bank: &mut Bank, token: &str, want: Code) {
    // SAFETY: kill(2) on our own pid with a signal the server catches.
    unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
    let seen = tokio::time::timeout(PATIENCE, async {
        loop {
            let got = match bank.get_balance(as_(token, "nobody")).await {
                Ok(_) => Code::Ok,
                Err(status) => status.code(),
            };
            if got == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    seen.await.expect("the reload took effect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_token_file_and_a_broken_file_keeps_the_old_tokens() {
    let path = std::env::temp_dir().join(format!("bank-reload-{}", std::process::id()));
    write_file(&path, format!("alice {ALICE}\n"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = config(|c| c.auth_tokens = Some(path.clone()));
    tokio::spawn(bank_server::run(listener, config, std::future::pending()));
    let mut bank = BankClient::new(connect(addr).await.unwrap());
    assert_eq!(
        code(bank.get_balance(as_(BOB, "nobody")).await),
        Code::Unauthenticated
    );
    assert_eq!(
        code(bank.get_balance(as_(ALICE, "nobody")).await),
        Code::PermissionDenied
    );
    write_file(&path, format!("bob {BOB}\n"));
    hangup_until(&mut bank, BOB, Code::PermissionDenied).await;
    assert_eq!(
        code(bank.get_balance(as_(ALICE, "nobody")).await),
        Code::Unauthenticated
    );
    write_file(&path, "a broken line\n");
    // SAFETY: as above.
    unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        code(bank.get_balance(as_(BOB, "nobody")).await),
        Code::PermissionDenied,
        "old tokens kept"
    );
    let _ = std::fs::remove_file(&path);
}

/// An open WithdrawStream: where its requests go, and its answers.
struct OpenStream {
    requests: mpsc::Sender<WithdrawRequest>,
    answers: Streaming<OperationResult>,
}

impl OpenStream {
    async fn open(bank: &mut Bank, token: &str) -> OpenStream {
        let (requests, rx) = mpsc::channel(4);
        let answers = ok(bank
            .withdraw_stream(with_token(token, ReceiverStream::new(rx)))
            .await);
        OpenStream { requests, answers }
    }

    /// Sends one withdrawal of 1 from `id` and returns what the stream answers.
    async fn withdraw(&mut self, id: &str, rid: &str) -> Result<OperationResult, Status> {
        // A stream already ended by the server may have dropped its receiver.
        let _ = self.requests.send(withdraw(id, 1, rid)).await;
        let answer = tokio::time::timeout(PATIENCE, self.answers.message()).await;
        match answer.expect("the stream answers") {
            Ok(Some(result)) => Ok(result),
            Ok(None) => Err(Status::cancelled("the stream ended without an answer")),
            Err(status) => Err(status),
        }
    }
}

/// Rewrites the token file, sends SIGHUP, and waits until `probe` hears `want`.
async fn reload_to(bank: &mut Bank, path: &std::path::Path, text: &str, probe: &str, want: Code) {
    write_file(path, text);
    hangup_until(bank, probe, want).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_revokes_or_changes_a_token_ends_its_open_stream() {
    let path = std::env::temp_dir().join(format!("bank-reload-stream-{}", std::process::id()));
    write_file(&path, format!("alice {ALICE}\nbob {BOB}\n"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = config(|c| c.auth_tokens = Some(path.clone()));
    tokio::spawn(bank_server::run(listener, config, std::future::pending()));
    let mut bank = BankClient::new(connect(addr).await.unwrap());
    ok(bank.open_account(with_token(ALICE, open_req("a", 100))).await);
    ok(bank.open_account(with_token(BOB, open_req("b", 100))).await);
    let mut alice = OpenStream::open(&mut bank, ALICE).await;
    let mut bob = OpenStream::open(&mut bank, BOB).await;
    assert_eq!(alice.withdraw("a", "a1").await.unwrap().balance, 99);
    assert_eq!(bob.withdraw("b", "b1").await.unwrap().balance, 99);
    // Alice's token now names carol: her stream ends; bob's goes on.
    let changed = format!("carol {ALICE}\nbob {BOB}\ndave {DAVE}\n");
    reload_to(&mut bank, &path, &changed, DAVE, Code::PermissionDenied).await;
    let refused = alice.withdraw("a", "a2").await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(alice.withdraw("a", "a3").await.is_err(), "the stream ended");
    assert_eq!(bob.withdraw("b", "b2").await.unwrap().balance, 98);
    // Bob's token is removed: his stream ends too.
    reload_to(
        &mut bank,
        &path,
        &format!("carol {ALICE}\n"),
        BOB,
        Code::Unauthenticated,
    )
    .await;
    let refused = bob.withdraw("b", "b3").await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    // Both back: nothing after the reloads was applied.
    let both = format!("alice {ALICE}\nbob {BOB}\n");
    reload_to(&mut bank, &path, &both, BOB, Code::PermissionDenied).await;
    let a = ok(bank.get_balance(as_(ALICE, "a")).await);
    let b = ok(bank.get_balance(as_(BOB, "b")).await);
    assert_eq!(
        ((a.balance, a.sequence), (b.balance, b.sequence)),
        ((99, 1), (98, 2))
    );
    let _ = std::fs::remove_file(&path);
}
