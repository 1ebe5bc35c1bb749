//! Shared helpers of the gRPC tests: a real server on 127.0.0.1:0 stopped by a
//! oneshot, connected bank and health clients, and terse request builders.

use std::fmt::Debug;
use std::time::Duration;

pub use bank::v1::bank_client::BankClient;
pub use bank::v1::{
    DepositRequest, GetBalanceRequest, GetOperationRequest, OpenAccountRequest, OperationResult, Outcome,
    TransferRequest, WithdrawRequest,
};
use bank_server::{BoxError, ServerConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};
pub use tonic::{Code, Request, Response, Status};
pub use tonic_health::pb::health_check_response::ServingStatus;
pub use tonic_health::pb::health_client::HealthClient;
pub use tonic_health::pb::HealthCheckRequest;

pub type Bank = BankClient<Channel>;

/// The longest a test waits for anything before it fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A running server and clients connected to it.
pub struct TestServer {
    pub bank: Bank,
    pub health: HealthClient<Channel>,
    pub channel: Channel,
    pub addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), BoxError>>,
}

/// The default server config without processing delay, adjusted by `tweak`.
pub fn config(tweak: impl FnOnce(&mut ServerConfig)) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.ledger.processing_delay = Duration::ZERO;
    tweak(&mut config);
    config
}

/// Starts `bank_server::run` on a fresh port and connects to it.
pub async fn start(config: ServerConfig) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(bank_server::run(listener, config, async {
        let _ = stopped.await;
    }));
    let channel = connect(addr).await.expect("connect to the test server");
    TestServer {
        bank: BankClient::new(channel.clone()),
        health: HealthClient::new(channel.clone()),
        channel,
        addr,
        stop: Some(stop),
        task,
    }
}

/// A new connection to `addr`.
pub async fn connect(addr: std::net::SocketAddr) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
}

impl TestServer {
    /// Resolves the shutdown future handed to `run`.
    pub fn trigger_shutdown(&mut self) {
        self.stop
            .take()
            .expect("shutdown triggered once")
            .send(())
            .unwrap();
    }

    /// Waits for `run` to return.
    pub async fn stopped(self) -> Result<(), BoxError> {
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("run returns")
            .unwrap()
    }
}

/// The message of a successful call; panics with the status otherwise.
#[track_caller]
pub fn ok<T>(r: Result<Response<T>, Status>) -> T {
    match r {
        Ok(response) => response.into_inner(),
        Err(status) => panic!("unexpected status {status:?}"),
    }
}

/// The code of a failed call; panics if it succeeded.
#[track_caller]
pub fn code<T: Debug>(r: Result<T, Status>) -> Code {
    r.expect_err("expected an error status").code()
}

/// A request that carries a `grpc-timeout`.
pub fn timed<T>(message: T, timeout: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    request
}

pub fn open_req(id: &str, initial_balance: u64) -> OpenAccountRequest {
    OpenAccountRequest {
        account_id: id.into(),
        initial_balance,
    }
}

pub fn deposit(id: &str, amount: u64, rid: &str) -> DepositRequest {
    DepositRequest {
        account_id: id.into(),
        amount,
        request_id: rid.into(),
    }
}

pub fn withdraw(id: &str, amount: u64, rid: &str) -> WithdrawRequest {
    WithdrawRequest {
        account_id: id.into(),
        amount,
        request_id: rid.into(),
        wait_for_funds: false,
    }
}

/// A withdrawal that waits for funds.
pub fn waiting(id: &str, amount: u64, rid: &str) -> WithdrawRequest {
    WithdrawRequest {
        wait_for_funds: true,
        ..withdraw(id, amount, rid)
    }
}

pub fn transfer(from: &str, to: &str, amount: u64, rid: &str) -> TransferRequest {
    TransferRequest {
        from_account_id: from.into(),
        to_account_id: to.into(),
        amount,
        request_id: rid.into(),
    }
}

pub fn get_op(id: &str, rid: &str) -> GetOperationRequest {
    GetOperationRequest {
        account_id: id.into(),
        request_id: rid.into(),
    }
}

pub fn get_balance(id: &str) -> GetBalanceRequest {
    GetBalanceRequest {
        account_id: id.into(),
    }
}

/// Opens accounts, each with its balance.
pub async fn open_all(bank: &mut Bank, accounts: &[(&str, u64)]) {
    for (id, balance) in accounts {
        ok(bank.open_account(open_req(id, *balance)).await);
    }
}

/// (balance, sequence) of an account.
pub async fn state(bank: &mut Bank, id: &str) -> (u64, u64) {
    let account = ok(bank.get_balance(get_balance(id)).await);
    (account.balance, account.sequence)
}

/// Starts a withdrawal that waits for funds (it needs a non-empty request id)
/// and returns once it is known to be waiting. Two identical copies are sent:
/// whichever reaches the account second finds the id in progress (ABORTED), and
/// that answer proves the other one is waiting. Returns the waiting call.
pub async fn start_waiter(
    bank: &Bank,
    request: WithdrawRequest,
) -> JoinHandle<Result<OperationResult, Status>> {
    assert!(request.wait_for_funds && !request.request_id.is_empty());
    let spawn_copy = || {
        let (mut bank, request) = (bank.clone(), request.clone());
        tokio::spawn(async move { bank.withdraw(request).await.map(Response::into_inner) })
    };
    let (mut first, mut second) = (spawn_copy(), spawn_copy());
    let (refused, waiter) = tokio::time::timeout(PATIENCE, async {
        tokio::select! {
            r = &mut first => (r, second),
            r = &mut second => (r, first),
        }
    })
    .await
    .expect("one copy of the waiting withdrawal answers ABORTED");
    assert_eq!(code(refused.unwrap()), Code::Aborted);
    waiter
}

/// Awaits a spawned call, failing the test if it takes longer than [`PATIENCE`].
pub async fn join<T>(handle: JoinHandle<T>) -> T {
    tokio::time::timeout(PATIENCE, handle)
        .await
        .expect("the call finishes")
        .unwrap()
}
