//! Idempotency belongs to its owner (issue 18, attack 3): with
//! `--auth-tokens` and two principals, one principal's traffic cannot make
//! the server-wide cap (`--max-request-ids`) forget the other's request id.
//! Bob's 1,200 `GetOperation`s of unseen ids on his own account (each fences
//! an id) leave alice's `pay-rent` remembered: her retry is a replay and her
//! balance does not move.

#[allow(dead_code, unused_imports)]
mod common;

use std::path::PathBuf;

use common::*;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-9876543210";
/// The cap of the attack as reported.
const MAX_REQUEST_IDS: usize = 1_000;
/// Bob's `GetOperation`s of unseen ids: more than the cap.
const BOB_FENCES: usize = 1_200;

type Interceptor = Box<dyn FnMut(Request<()>) -> Result<Request<()>, Status> + Send + Sync>;
type Client = BankClient<InterceptedService<Channel, Interceptor>>;

/// A tokens file for alice and bob, removed on drop.
struct Tokens(PathBuf);

impl Tokens {
    fn new() -> Tokens {
        let path = std::env::temp_dir().join(format!("bank-request-ids-{}.tokens", std::process::id()));
        std::fs::write(&path, format!("alice {ALICE}\nbob {BOB}\n")).unwrap();
        Tokens(path)
    }
}

impl Drop for Tokens {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A bank client that sends `authorization: Bearer token`.
fn as_principal(channel: &Channel, token: &str) -> Client {
    let value: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    let add: Interceptor = Box::new(move |mut request: Request<()>| {
        request.metadata_mut().insert("authorization", value.clone());
        Ok(request)
    });
    BankClient::with_interceptor(channel.clone(), add)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_principals_get_operations_cannot_make_a_retry_apply_twice() {
    let tokens = Tokens::new();
    let s = start(config(|c| {
        c.auth_tokens = Some(tokens.0.clone());
        c.ledger.max_request_ids = MAX_REQUEST_IDS;
    }))
    .await;
    let (mut alice, mut bob) = (as_principal(&s.channel, ALICE), as_principal(&s.channel, BOB));
    ok(alice.open_account(open_req("alice-acc", 1_000)).await);
    ok(bob.open_account(open_req("bob-acc", 0)).await);

    let paid = ok(alice.withdraw(withdraw("alice-acc", 100, "pay-rent")).await);
    assert_eq!((paid.balance, paid.replayed), (900, false));
    for i in 0..BOB_FENCES {
        // Past the cap, bob's own oldest fences are forgotten, so an unseen
        // id of his may be FAILED_PRECONDITION: never refused otherwise.
        let answer = bob.get_operation(get_op("bob-acc", &format!("probe-{i}"))).await;
        let status = answer.as_ref().map_or_else(Status::code, |_| Code::Ok);
        assert!(
            matches!(status, Code::Ok | Code::FailedPrecondition),
            "bob's GetOperation {i}: {answer:?}"
        );
    }

    let retry = ok(alice.withdraw(withdraw("alice-acc", 100, "pay-rent")).await);
    assert!(retry.replayed, "alice's retry was applied again: {retry:?}");
    assert_eq!(retry.balance, 900);
    let now = ok(alice.get_balance(get_balance("alice-acc")).await);
    assert_eq!((now.balance, now.sequence), (900, 1), "alice's balance moved");
    // Bob's own newest fence is still remembered (only his oldest went).
    let newest = ok(bob
        .get_operation(get_op("bob-acc", &format!("probe-{}", BOB_FENCES - 1)))
        .await);
    assert!(newest.replayed && newest.outcome == Outcome::NotApplied as i32);
}
