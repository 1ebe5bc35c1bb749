//! Bounds over real connections: `--max-connections` holds a connection
//! beyond the limit in the backlog until one closes, and `--max-request-ids`
//! forgets the oldest id server-wide, which `GetOperation` then answers with
//! FAILED_PRECONDITION (as for any forgotten id).

#[allow(dead_code, unused_imports)]
mod common;

use std::time::Duration;

use common::*;
use tokio::net::TcpListener;
use tonic::transport::Endpoint;

/// How long a call on a connection held in the backlog is given to fail.
const HELD: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_past_max_connections_waits_until_one_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = config(|c| c.max_connections = 1);
    tokio::spawn(bank_server::run(listener, config, std::future::pending()));
    let first = connect(addr).await.unwrap();
    let mut first_bank = BankClient::new(first.clone());
    ok(first_bank.open_account(open_req("a", 1)).await);
    // The second connection is not served while the first is open...
    let second = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let mut second_bank = BankClient::new(second);
    let held = tokio::time::timeout(HELD, second_bank.get_balance(get_balance("a"))).await;
    assert!(
        held.is_err() || held.unwrap().is_err(),
        "served past --max-connections"
    );
    // ...and is once the first closes.
    drop((first_bank, first));
    let served = tokio::time::timeout(PATIENCE, async {
        loop {
            match second_bank.get_balance(get_balance("a")).await {
                Ok(answer) => return answer.into_inner(),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    assert_eq!(served.await.expect("served once the first closed").balance, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oldest_request_id_server_wide_is_forgotten_past_max_request_ids() {
    let mut s = start(config(|c| c.ledger.max_request_ids = 10)).await;
    open_all(&mut s.bank, &[("a", 0), ("b", 0)]).await;
    for i in 0..30 {
        let id = if i % 2 == 0 { "a" } else { "b" };
        ok(s.bank.deposit(deposit(id, 1, &format!("r{i}"))).await);
    }
    let forgotten = s.bank.get_operation(get_op("a", "r0")).await;
    assert_eq!(code(forgotten), Code::FailedPrecondition);
    let kept = ok(s.bank.get_operation(get_op("b", "r29")).await);
    assert!(kept.replayed && kept.outcome == Outcome::Approved as i32);
}
