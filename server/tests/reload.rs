//! SIGHUP reloads `--auth-tokens`: a token added to the file works after the
//! signal, a removed one stops working, and a broken file keeps the old
//! tokens. (Its own test binary: the signal goes to the whole process.)

#![cfg(unix)]

#[allow(dead_code, unused_imports)]
mod common;

use std::time::Duration;

use common::*;
use tokio::net::TcpListener;
use tonic::metadata::MetadataValue;

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-9876543210";

/// A GetBalance of `id` sent with `token`.
fn as_(token: &str, id: &str) -> Request<GetBalanceRequest> {
    let mut request = Request::new(get_balance(id));
    let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    request
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
    std::fs::write(&path, format!("alice {ALICE}\n")).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = config(|c| c.auth_tokens = Some(path.clone()));
    tokio::spawn(bank_server::run(listener, config, std::future::pending()));
    let mut bank = BankClient::new(connect(addr).await.unwrap());
    assert_eq!(
        code(bank.get_balance(as_(BOB, "nobody")).await),
        Code::Unauthenticated
    );
    assert_eq!(code(bank.get_balance(as_(ALICE, "nobody")).await), Code::NotFound);
    std::fs::write(&path, format!("bob {BOB}\n")).unwrap();
    hangup_until(&mut bank, BOB, Code::NotFound).await;
    assert_eq!(
        code(bank.get_balance(as_(ALICE, "nobody")).await),
        Code::Unauthenticated
    );
    std::fs::write(&path, "a broken line\n").unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        code(bank.get_balance(as_(BOB, "nobody")).await),
        Code::NotFound,
        "old tokens kept"
    );
    let _ = std::fs::remove_file(&path);
}
