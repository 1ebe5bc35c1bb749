//! The stress-client against servers that keep to the letter of the contract
//! but not to tonic's habits, or that stop answering: a server that sends a
//! stream's response headers only with its first answer (as grpcio's sync
//! server and grpc-go do) must be drivable in stream mode; a server that
//! accepts connections but never answers must end the run within its bound,
//! with exit 2 when it happens during setup and 3 (inconclusive) mid-run;
//! a server that takes a deposit of 0 instead of refusing it fails the
//! verdict through the invalid calls alone (`--invalid-ratio`).
//!
//! Every server here binds 127.0.0.1:0 and runs in the test's runtime; the
//! real `stress-client` binary is run against it. A run that outlives
//! [`HANG_LIMIT`] is killed and fails the test (with the old stream open, the
//! first test hung forever).

use std::net::SocketAddr;
use std::pin::Pin;
use std::process::Output;
use std::time::{Duration, Instant};

use bank::v1 as pb;
use bank::v1::bank_client::BankClient;
use bank::v1::bank_server::{Bank, BankServer};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde_json::Value;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status, Streaming};

#[path = "support/servers.rs"]
mod servers;
use servers::{listener, real_bank};

/// Past this a run is taken to hang: it is killed and the test fails.
const HANG_LIMIT: Duration = Duration::from_secs(60);
/// Slack on top of a run's documented bound for a loaded machine (the
/// bound itself is seconds; a hang is forever).
const BOUND_SLACK: Duration = Duration::from_secs(8);

/// Runs the stress-client with `flags` plus `--quiet --json`; its output,
/// report and wall time. Killed (and the test failed) past [`HANG_LIMIT`].
async fn stress(flags: &str) -> (Output, Option<Value>, Duration) {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("report.json");
    let started = Instant::now();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stress-client"))
        .args(flags.split_whitespace())
        .args(["--quiet", "--json"])
        .arg(&json)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("stress-client starts");
    let output = tokio::time::timeout(HANG_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("stress-client {flags} still running after {HANG_LIMIT:?}: it hangs"))
        .expect("stress-client runs");
    let report = std::fs::read_to_string(&json)
        .ok()
        .map(|text| serde_json::from_str(&text).expect("the report is valid JSON"));
    (output, report, started.elapsed())
}

// ---------------------------------------------------------------------------
// Headers with the first answer: a proxy in front of a real bank server.

/// Forwards every call to a real bank; a `WithdrawStream` sends no response
/// headers until it has its first answer, which needs a first request. When
/// `lenient`, a deposit of 0 is answered OK (NOT_APPLIED) instead of
/// INVALID_ARGUMENT: it changes nothing, so only the invalid calls see it.
struct LateHeaders {
    real: BankClient<Channel>,
    lenient: bool,
}

type Answers = Pin<Box<dyn Stream<Item = Result<pb::OperationResult, Status>> + Send>>;

#[tonic::async_trait]
impl Bank for LateHeaders {
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
        if self.lenient && r.get_ref().amount == 0 {
            return Ok(Response::new(pb::OperationResult {
                request_id: r.into_inner().request_id,
                outcome: pb::Outcome::NotApplied.into(),
                ..pb::OperationResult::default()
            }));
        }
        self.real.clone().deposit(r.into_inner()).await
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
        self.real.clone().get_operation(r.into_inner()).await
    }

    type WithdrawStreamStream = Answers;

    async fn withdraw_stream(
        &self,
        r: Request<Streaming<pb::WithdrawRequest>>,
    ) -> Result<Response<Answers>, Status> {
        // tonic sends the headers when this returns: so not before an answer.
        let requests = r.into_inner().take_while(|r| std::future::ready(r.is_ok()));
        let requests = requests.filter_map(|r| std::future::ready(r.ok()));
        let mut answers = self.real.clone().withdraw_stream(requests).await?.into_inner();
        let first = answers.message().await?;
        let first = futures::stream::iter(first.map(Ok));
        Ok(Response::new(Box::pin(first.chain(answers))))
    }
}

/// A server whose streams send their headers only with their first answer
/// (and that takes deposits of 0, if `lenient`).
async fn late_headers_bank(lenient: bool) -> SocketAddr {
    let real = real_bank().await;
    let real = BankClient::connect(format!("http://{real}"))
        .await
        .expect("connect to the real bank");
    let (listener, addr) = listener().await;
    let service = BankServer::new(LateHeaders { real, lenient });
    let incoming = TcpListenerStream::new(listener);
    tokio::spawn(
        Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming),
    );
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_mode_passes_against_a_server_that_sends_headers_with_its_first_answer() {
    let addr = late_headers_bank(false).await;
    for pipeline in [1, 4] {
        let flags = format!(
            "--target http://{addr} --mode stream --streams 4 --pipeline {pipeline} --requests 400 \
             --warmup 0s --accounts 3 --initial-balance 500 --timeout 5s"
        );
        let (output, report, _) = stress(&flags).await;
        let report = report.unwrap_or_else(|| panic!("a report; stderr: {}", stderr(&output)));
        assert_eq!(output.status.code(), Some(0), "{flags}: {report:#}");
        assert_eq!(report["operations"]["total"], 400, "{report:#}");
        assert_eq!(report["operations"]["errors"], 0, "{report:#}");
    }
}

// ---------------------------------------------------------------------------
// Silence: raw HTTP/2 that accepts every call and answers none (or only
// OpenAccount), holding each stream open.

/// A server that completes the HTTP/2 handshake and accepts every call, but
/// answers only OpenAccount (if `open_accounts`), and nothing else ever.
async fn silent_server(open_accounts: bool) -> SocketAddr {
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve_silently(socket, open_accounts));
        }
    });
    addr
}

async fn serve_silently(socket: tokio::net::TcpStream, open_accounts: bool) {
    let Ok(mut connection) = h2::server::handshake(socket).await else {
        return;
    };
    // Held, never answered: dropping them would reset the streams.
    let mut held = Vec::new();
    while let Some(Ok((request, mut respond))) = connection.accept().await {
        if open_accounts && request.uri().path() == "/bank.v1.Bank/OpenAccount" {
            answer_empty_account(&mut respond);
        } else {
            held.push((request, respond));
        }
    }
}

/// Answers OK with an empty `Account` message (all fields default).
fn answer_empty_account(respond: &mut h2::server::SendResponse<Bytes>) {
    let response = http::Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .body(())
        .expect("a valid response head");
    let Ok(mut body) = respond.send_response(response, false) else {
        return;
    };
    // gRPC framing: not compressed, length 0.
    let _ = body.send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), false);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let _ = body.send_trailers(trailers);
}

// ---------------------------------------------------------------------------
// A slow handshake: a proxy that holds every new connection before passing
// it on to a real bank.

/// How long the slow proxy holds each new connection: long enough that
/// half of it stands far above a loaded machine's scheduling hiccups.
const HANDSHAKE_DELAY: Duration = Duration::from_secs(1);

/// A proxy in front of a real bank that waits [`HANDSHAKE_DELAY`] after
/// accepting each connection before it forwards a byte.
async fn slow_handshake_bank() -> SocketAddr {
    let real = real_bank().await;
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                tokio::time::sleep(HANDSHAKE_DELAY).await;
                let Ok(mut upstream) = tokio::net::TcpStream::connect(real).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut socket, &mut upstream).await;
            });
        }
    });
    addr
}

/// The schedule starts once the load's connections are open: a run without
/// warmup does not count their setup as the first sends' lateness. (With
/// the origin taken before the fast path connected, the first sends were
/// late by the handshakes: 652 ms with a 300 ms delay.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_setup_is_not_counted_as_lateness() {
    let addr = slow_handshake_bank().await;
    let flags = format!(
        "--target http://{addr} --rate 100 --duration 1s --warmup 0s --streams 2 \
         --connections 2 --accounts 2"
    );
    let (output, report, _) = stress(&flags).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = report.expect("a report");
    let max_us = report["schedule"]["lateness_us"]["max"]
        .as_u64()
        .expect("lateness max");
    let limit_us = u64::try_from(HANDSHAKE_DELAY.as_micros() / 2).unwrap_or(u64::MAX);
    assert!(
        max_us < limit_us,
        "lateness max {max_us} us: {:#}",
        report["schedule"]
    );
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_fails_the_setup_with_exit_2_within_the_timeout() {
    let addr = silent_server(false).await;
    let (output, report, took) = stress(&format!("--target http://{addr} --timeout 1s --requests 10")).await;
    assert_eq!(output.status.code(), Some(2), "stderr: {}", stderr(&output));
    assert!(report.is_none());
    let message = stderr(&output);
    assert!(message.contains("did not answer OpenAccount"), "{message}");
    assert!(took < Duration::from_secs(1) + BOUND_SLACK, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_answering_mid_run_ends_within_the_bound_as_inconclusive() {
    let addr = silent_server(true).await;
    for mode in ["stream", "unary"] {
        // Bound: warmup 0 + duration 1 s, + --timeout 1 s for the calls in
        // flight, + --resolve-timeout 1 s and one --timeout for GetOperation,
        // + one --timeout (and twice the setup time) for the final reads.
        let flags = format!(
            "--target http://{addr} --mode {mode} --streams 4 --accounts 2 --duration 1s \
             --warmup 0s --timeout 1s --resolve-timeout 1s"
        );
        let (output, report, took) = stress(&flags).await;
        let bound = Duration::from_secs(1 + 1 + 2 + 1);
        assert!(took < bound + BOUND_SLACK, "{mode}: took {took:?}");
        // Nothing was answered, so nothing can be decided: inconclusive, never passed.
        let code = output.status.code();
        assert_eq!(code, Some(3), "{mode}: {report:#?} {}", stderr(&output));
        // Latency is for answers: the calls cut at --timeout are timed apart.
        let report = report.unwrap_or_else(|| panic!("{mode}: a report"));
        assert_eq!(report["latency_us"]["count"], 0, "{mode}: {report:#}");
        assert!(
            report["latency_failed_us"]["count"].as_u64() > Some(0),
            "{mode}: {report:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_takes_a_deposit_of_0_fails_through_the_invalid_calls() {
    let addr = late_headers_bank(true).await;
    let flags = format!(
        "--target http://{addr} --streams 4 --requests 600 --warmup 0s --accounts 3 \
         --initial-balance 500 --timeout 5s --invalid-ratio 0.2 --seed 3"
    );
    let (output, report, _) = stress(&flags).await;
    let report = report.unwrap_or_else(|| panic!("a report; stderr: {}", stderr(&output)));
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    let violations = report["consistency"]["violations"]
        .as_array()
        .expect("violations");
    assert!(
        violations
            .iter()
            .all(|v| v["kind"] == "protocol" && v["detail"].as_str().is_some_and(|d| d.contains("of 0"))),
        "{violations:#?}"
    );
    let extras = &report["extras"];
    assert!(extras["invalid_wrong"].as_u64() > Some(0), "{extras:#}");
    assert_eq!(report["consistency"]["total_violations"], extras["invalid_wrong"]);
    assert_eq!(
        report["operations"]["errors"], 0,
        "invalid calls are never errors"
    );
}
