//! GetOperation answers reach the checker. A proxy in front of a real bank
//! server applies every fifth deposit but answers its call UNAVAILABLE, so
//! the stress-client must settle it with GetOperation. When the proxy then
//! answers GetOperation NOT_FOUND for the account the run opened (which the
//! contract keeps for unknown accounts), the verdict must be `lost_ack`, not
//! a pass with the op left unknown; when it forwards GetOperation, the run
//! passes.
//!
//! The proxy binds 127.0.0.1:0 and runs in the test's runtime; the real
//! `stress-client` binary is run against it.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bank::v1 as pb;
use bank::v1::bank_client::BankClient;
use bank::v1::bank_server::{Bank, BankServer};
use futures::Stream;
use serde_json::Value;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status, Streaming};

#[path = "support/servers.rs"]
mod servers;
use servers::{listener, real_bank};

/// Past this a run is taken to hang: it is killed and the test fails.
const HANG_LIMIT: Duration = Duration::from_secs(60);
/// One deposit in this many is applied but answered UNAVAILABLE.
const LOST_ANSWER_EVERY: u64 = 5;

/// Forwards every call to a real bank, losing some deposits' answers; its
/// GetOperation tells the truth or answers NOT_FOUND.
struct LostAnswers {
    real: BankClient<Channel>,
    deposits: AtomicU64,
    truthful_lookups: bool,
}

type Answers = Pin<Box<dyn Stream<Item = Result<pb::OperationResult, Status>> + Send>>;

#[tonic::async_trait]
impl Bank for LostAnswers {
    async fn open_account(
        &self,
        r: Request<pb::OpenAccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        self.real.clone().open_account(r.into_inner()).await
    }
    async fn get_balance(&self, r: Request<pb::GetBalanceRequest>) -> Result<Response<pb::Account>, Status> {
        self.real.clone().get_balance(r.into_inner()).await
    }
    async fn deposit(&self, r: Request<pb::DepositRequest>) -> Result<Response<pb::OperationResult>, Status> {
        let answer = self.real.clone().deposit(r.into_inner()).await?;
        match self.deposits.fetch_add(1, Ordering::Relaxed) % LOST_ANSWER_EVERY {
            0 => Err(Status::unavailable("proxy: the answer was lost")),
            _ => Ok(answer),
        }
    }
    async fn withdraw(
        &self,
        r: Request<pb::WithdrawRequest>,
    ) -> Result<Response<pb::OperationResult>, Status> {
        self.real.clone().withdraw(r.into_inner()).await
    }
    async fn transfer(
        &self,
        r: Request<pb::TransferRequest>,
    ) -> Result<Response<pb::OperationResult>, Status> {
        self.real.clone().transfer(r.into_inner()).await
    }
    async fn get_operation(
        &self,
        r: Request<pb::GetOperationRequest>,
    ) -> Result<Response<pb::OperationResult>, Status> {
        if !self.truthful_lookups {
            return Err(Status::not_found("proxy: no such account"));
        }
        self.real.clone().get_operation(r.into_inner()).await
    }

    type WithdrawStreamStream = Answers;

    async fn withdraw_stream(
        &self,
        _r: Request<Streaming<pb::WithdrawRequest>>,
    ) -> Result<Response<Answers>, Status> {
        Err(Status::unimplemented("proxy: unary mode only"))
    }
}

/// The proxy in front of a fresh real bank.
async fn proxy(truthful_lookups: bool) -> SocketAddr {
    let real = real_bank().await;
    let real = BankClient::connect(format!("http://{real}"))
        .await
        .expect("connect to the real bank");
    let (listener, addr) = listener().await;
    let service = BankServer::new(LostAnswers {
        real,
        deposits: AtomicU64::new(0),
        truthful_lookups,
    });
    let incoming = TcpListenerStream::new(listener);
    tokio::spawn(
        Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming),
    );
    addr
}

/// Runs the stress-client against `addr`; its exit code and report.
async fn stress(addr: SocketAddr) -> (Option<i32>, Value) {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("report.json");
    let flags = format!(
        "--target http://{addr} --mode unary --streams 4 --requests 200 --warmup 0s --accounts 2 \
         --initial-balance 1000 --timeout 5s --deposit-ratio 0.6 --quiet --json"
    );
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stress-client"))
        .args(flags.split_whitespace())
        .arg(&json)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("stress-client starts");
    let output = tokio::time::timeout(HANG_LIMIT, child.wait_with_output())
        .await
        .expect("stress-client ends within the hang limit")
        .expect("stress-client runs");
    let text = std::fs::read_to_string(&json).expect("a report");
    (
        output.status.code(),
        serde_json::from_str(&text).expect("valid JSON"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_operation_not_found_for_an_opened_account_is_a_lost_ack() {
    let (code, report) = stress(proxy(false).await).await;
    let consistency = &report["consistency"];
    assert_eq!(code, Some(1), "{consistency:#}");
    let violations = consistency["violations"].as_array().expect("violations");
    let lost = violations.iter().find(|v| v["kind"] == "lost_ack");
    let detail = lost
        .map(|v| v["detail"].as_str().unwrap_or_default())
        .unwrap_or_default();
    assert!(
        detail.contains("GetOperation about it answered NOT_FOUND"),
        "{consistency:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_settled_by_a_truthful_get_operation_pass() {
    let (code, report) = stress(proxy(true).await).await;
    let consistency = &report["consistency"];
    assert_eq!(code, Some(0), "{consistency:#}");
    assert_eq!(consistency["verdict"], "passed", "{consistency:#}");
    assert!(
        report["operations"]["errors"].as_u64().unwrap_or(0) > 0,
        "{report:#}"
    );
}
