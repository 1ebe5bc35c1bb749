//! `stress-client conformance` run as a process against servers in this
//! test on 127.0.0.1:0: the real bank-server passes every check (without
//! tokens, and with two principals), a server broken on purpose (replays
//! not flagged, or ALREADY_EXISTS answered as NOT_FOUND) fails exactly the
//! checks about that and exits 1, and an unreachable target exits 2.

#[allow(dead_code)]
#[path = "support/servers.rs"]
mod servers;

use std::pin::Pin;
use std::sync::Arc;

use bank::v1 as pb;
use bank::v1::bank_server::{Bank, BankServer};
use bank_server::backend::ledger::Ledger;
use bank_server::admission::ops::Ops;
use bank_server::rpc::service::BankService;
use futures::{Stream, StreamExt};
use serde_json::Value;
use tonic::{Code, Request, Response, Status, Streaming};

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-9876543210";

/// Runs `stress-client conformance` with `args`; its exit code and JSON report.
async fn conformance(args: &[&str]) -> (i32, Option<Value>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("conformance.json");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_stress-client"))
        .arg("conformance")
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()
        .await
        .expect("stress-client runs");
    let report = std::fs::read_to_string(&json)
        .ok()
        .map(|text| serde_json::from_str(&text).expect("the report is valid JSON"));
    (output.status.code().expect("exited, not killed"), report)
}

/// The checks of `report` as (id, passed, skipped, detail).
fn checks(report: &Value) -> Vec<(String, bool, bool, String)> {
    let list = report["checks"].as_array().expect("checks");
    list.iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["passed"].as_bool().unwrap(),
                c["skipped"].as_bool().unwrap(),
                c["detail"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// The ids that failed.
fn failed(report: &Value) -> Vec<String> {
    checks(report)
        .into_iter()
        .filter(|(_, passed, skipped, _)| !passed && !skipped)
        .map(|(id, _, _, detail)| format!("{id}: {detail}"))
        .collect()
}

fn skipped(report: &Value) -> Vec<String> {
    checks(report).into_iter().filter(|c| c.2).map(|c| c.0).collect()
}

/// A real bank server with a 1 ms delay (and `tokens`, if given).
async fn real_server(tokens: Option<std::path::PathBuf>) -> String {
    let (listener, addr) = servers::listener().await;
    let mut config = bank_server::ServerConfig::default();
    config.ledger.processing_delay = std::time::Duration::from_millis(1);
    config.auth_tokens = tokens;
    tokio::spawn(bank_server::run(listener, config, std::future::pending()));
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_server_passes_every_check_twice_in_a_row() {
    let target = real_server(None).await;
    for run in 0..2 {
        let (code, report) = conformance(&["--target", &target]).await;
        let report = report.expect("a report");
        assert_eq!(failed(&report), Vec::<String>::new(), "run {run}");
        let total = report["checks"].as_array().unwrap().len();
        assert!(total >= 40, "{total} checks");
        let skipped = skipped(&report);
        assert!(skipped.iter().all(|id| id.starts_with("auth-")), "{skipped:?}");
        let unsettled = report["failed"].as_u64().unwrap();
        assert_eq!(code, if unsettled == 0 { 0 } else { 1 }, "{report:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_principals_pass_the_ownership_checks() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("alice {ALICE}\nbob {BOB}\n")).unwrap();
    let target = real_server(Some(tokens)).await;
    let args = ["--target", &target, "--token", ALICE, "--second-token", BOB];
    let (_, report) = conformance(&args).await;
    let report = report.expect("a report");
    assert_eq!(failed(&report), Vec::<String>::new());
    assert_eq!(skipped(&report), Vec::<String>::new(), "every auth check ran");
    let auth = checks(&report)
        .into_iter()
        .filter(|c| c.0.starts_with("auth-"))
        .count();
    assert!(auth >= 8, "{auth} auth checks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_or_a_bad_flag_exits_2() {
    let (code, report) = conformance(&["--target", "http://127.0.0.1:1"]).await;
    assert_eq!(code, 2);
    assert!(report.is_none());
    let (code, _) = conformance(&["--target", "http://127.0.0.1:1", "--second-token", BOB]).await;
    assert_eq!(code, 2, "--second-token needs --token");
}

/// How the broken server lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Breakage {
    /// Every stored result is answered with `replayed = false`.
    ReplayNotFlagged,
    /// ALREADY_EXISTS is answered as NOT_FOUND.
    ExistsAsNotFound,
    /// No lie: a few money calls (the [`FAILED_CALLS`]-th of the run) are
    /// answered UNAVAILABLE before anything is applied, as a correct server
    /// may answer any call.
    FailsSomeCalls,
}

/// Which money calls of the run `Breakage::FailsSomeCalls` fails (0-based).
const FAILED_CALLS: [u32; 3] = [3, 40, 90];

/// The real service, with one lie on the wire.
struct Broken {
    inner: BankService,
    breakage: Breakage,
    /// Money calls so far (for `Breakage::FailsSomeCalls`).
    calls: std::sync::atomic::AtomicU32,
}

type Answers = Pin<Box<dyn Stream<Item = Result<pb::OperationResult, Status>> + Send>>;

/// `status` as `breakage` answers it.
fn lie_status(breakage: Breakage, status: Status) -> Status {
    if breakage == Breakage::ExistsAsNotFound && status.code() == Code::AlreadyExists {
        return Status::not_found(status.message());
    }
    status
}

/// `answer` as `breakage` answers it.
fn lie(
    breakage: Breakage,
    answer: Result<pb::OperationResult, Status>,
) -> Result<pb::OperationResult, Status> {
    let mut result = answer.map_err(|s| lie_status(breakage, s))?;
    if breakage == Breakage::ReplayNotFlagged {
        result.replayed = false;
    }
    Ok(result)
}

impl Broken {
    /// UNAVAILABLE, before anything is applied, if this money call is one
    /// that `Breakage::FailsSomeCalls` fails.
    fn fail_now(&self) -> Result<(), Status> {
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.breakage == Breakage::FailsSomeCalls && FAILED_CALLS.contains(&n) {
            true => Err(Status::unavailable("failed before applying (test server)")),
            false => Ok(()),
        }
    }

    fn status(&self, status: Status) -> Status {
        lie_status(self.breakage, status)
    }

    fn op(
        &self,
        answer: Result<Response<pb::OperationResult>, Status>,
    ) -> Result<Response<pb::OperationResult>, Status> {
        lie(self.breakage, answer.map(Response::into_inner)).map(Response::new)
    }
}

#[tonic::async_trait]
impl Bank for Broken {
    async fn open_account(
        &self,
        r: Request<pb::OpenAccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        self.inner.open_account(r).await.map_err(|s| self.status(s))
    }

    async fn get_balance(&self, r: Request<pb::GetBalanceRequest>) -> Result<Response<pb::Account>, Status> {
        self.inner.get_balance(r).await.map_err(|s| self.status(s))
    }

    async fn deposit(&self, r: Request<pb::DepositRequest>) -> Result<Response<pb::OperationResult>, Status> {
        self.fail_now()?;
        self.op(self.inner.deposit(r).await)
    }

    async fn withdraw(
        &self,
        r: Request<pb::WithdrawRequest>,
    ) -> Result<Response<pb::OperationResult>, Status> {
        self.fail_now()?;
        self.op(self.inner.withdraw(r).await)
    }

    type WithdrawStreamStream = Answers;

    async fn withdraw_stream(
        &self,
        r: Request<Streaming<pb::WithdrawRequest>>,
    ) -> Result<Response<Answers>, Status> {
        let answers = self.inner.withdraw_stream(r).await?.into_inner();
        let breakage = self.breakage;
        Ok(Response::new(Box::pin(answers.map(move |a| lie(breakage, a)))))
    }

    async fn transfer(
        &self,
        r: Request<pb::TransferRequest>,
    ) -> Result<Response<pb::OperationResult>, Status> {
        self.fail_now()?;
        self.op(self.inner.transfer(r).await)
    }

    async fn get_operation(
        &self,
        r: Request<pb::GetOperationRequest>,
    ) -> Result<Response<pb::OperationResult>, Status> {
        self.op(self.inner.get_operation(r).await)
    }
}

/// Serves the real service behind `breakage` on 127.0.0.1:0.
async fn broken_server(breakage: Breakage) -> String {
    let (listener, addr) = servers::listener().await;
    let config = bank_server::backend::ledger::LedgerConfig {
        processing_delay: std::time::Duration::ZERO,
        ..Default::default()
    };
    let ops = Arc::new(Ops::new(Arc::new(Ledger::new(config))));
    let broken = Broken {
        inner: BankService::new(ops, 64),
        breakage,
        calls: std::sync::atomic::AtomicU32::new(0),
    };
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let server = tonic::transport::Server::builder()
        .add_service(BankServer::new(broken))
        .serve_with_incoming(incoming);
    tokio::spawn(server);
    format!("http://{addr}")
}

/// The ids of the checks that failed against `breakage`, after checking
/// that the run exited 1 and its JSON counts them.
async fn failures_of(breakage: Breakage) -> Vec<String> {
    let target = broken_server(breakage).await;
    let (code, report) = conformance(&["--target", &target]).await;
    let report = report.expect("a report");
    assert_eq!(code, 1, "{report:#}");
    let failed: Vec<String> = checks(&report)
        .into_iter()
        .filter(|c| !c.1 && !c.2)
        .map(|c| c.0)
        .collect();
    assert_eq!(report["failed"].as_u64(), Some(failed.len() as u64));
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_without_the_flag_fail_the_replay_checks_only() {
    let failed = failures_of(Breakage::ReplayNotFlagged).await;
    for id in [
        "idem-replay-deposit",
        "idem-replay-transfer",
        "fence-known-approved",
        "stream-replay",
        "fence-repeat",
    ] {
        assert!(failed.iter().any(|f| f == id), "{id} not in {failed:?}");
    }
    for id in [
        "rpc-deposit",
        "xfer-approved-both-legs",
        "exists-open-twice",
        "invalid-amount-zero",
    ] {
        assert!(!failed.iter().any(|f| f == id), "{id} in {failed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn already_exists_answered_as_not_found_fails_the_conflict_checks_only() {
    let failed = failures_of(Breakage::ExistsAsNotFound).await;
    for id in [
        "exists-open-twice",
        "idem-conflict-amount",
        "idem-conflict-target",
        "stream-conflict-ends",
    ] {
        assert!(failed.iter().any(|f| f == id), "{id} not in {failed:?}");
    }
    for id in [
        "idem-replay-deposit",
        "notfound-get-balance",
        "fence-known-approved",
    ] {
        assert!(!failed.iter().any(|f| f == id), "{id} in {failed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_fails_a_few_calls_before_applying_them_passes() {
    // A check that met UNAVAILABLE where it expected an answer is run again
    // on fresh accounts: a correct server may fail any call.
    let target = broken_server(Breakage::FailsSomeCalls).await;
    let (code, report) = conformance(&["--target", &target]).await;
    let report = report.expect("a report");
    assert_eq!(failed(&report), Vec::<String>::new());
    assert_eq!(code, 0);
}
