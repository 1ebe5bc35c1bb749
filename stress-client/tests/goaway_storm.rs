//! No reconnect storm (issue 22): a raw HTTP/2 server that, like Node's
//! HTTP/2 (grpc-js) with its rapid-reset guard, closes a connection with a
//! GOAWAY after [`RESETS_PER_CONNECTION`] client resets, and that is slower
//! to answer a new connection's handshake than a call's deadline (a loaded
//! server). Money ops are never answered, so with `--timeout 10ms` every
//! call times out and resets its stream; everything else (setup, settling)
//! is forwarded to a real bank. The fast path must open about one
//! connection per GOAWAY, as tonic's path does — with the reconnect inside
//! the call, each call's deadline dropped the half-made connection and the
//! next call made another (hundreds a second) — and its throughput must
//! stay within 2× of tonic's in the same test.
//!
//! Every server binds 127.0.0.1:0 and runs in the test's runtime; the real
//! `stress-client` binary is run against it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use h2::server::SendResponse;
use h2::RecvStream;
use http::{Request, Response};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::Notify;

#[path = "support/servers.rs"]
mod servers;
use servers::{listener, real_bank};

/// Client resets a connection takes before the server sends GOAWAY.
const RESETS_PER_CONNECTION: u64 = 100;
/// How long the server takes to start speaking HTTP/2 on a new connection:
/// longer than the calls' deadline.
const HANDSHAKE_DELAY: Duration = Duration::from_millis(30);
/// Past this a money op still unanswered is refused (no call waits so long).
const UNANSWERED_LIMIT: Duration = Duration::from_secs(10);
/// Past this a run is taken to hang: it is killed and the test fails.
const HANG_LIMIT: Duration = Duration::from_secs(60);
/// The run's connections.
const CONNECTIONS: u64 = 2;
/// Streams reset before the server accepted them that a connection holds
/// before h2 itself sends GOAWAY (h2's default is 20).
const PENDING_RESETS_MAX: usize = 100_000;

/// What the server saw.
#[derive(Default)]
struct Seen {
    connections: AtomicU64,
    resets: AtomicU64,
    goaways: AtomicU64,
}

/// The server on 127.0.0.1:0, in front of a real bank.
async fn resetting_server(seen: Arc<Seen>) -> SocketAddr {
    let real = real_bank().await;
    let tcp = TcpStream::connect(real).await.expect("the real bank");
    let (upstream, connection) = h2::client::handshake(tcp).await.expect("h2 to the real bank");
    tokio::spawn(connection);
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            seen.connections.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(socket, upstream.clone(), Arc::clone(&seen)));
        }
    });
    addr
}

/// One connection: money ops wait for their reset; after
/// [`RESETS_PER_CONNECTION`] of them the connection goes away.
async fn serve(socket: TcpStream, upstream: SendRequest<Bytes>, seen: Arc<Seen>) {
    tokio::time::sleep(HANDSHAKE_DELAY).await;
    // h2's own guard sends a GOAWAY of its own once PENDING_RESETS_MAX streams
    // are reset before this loop accepted them (default 20): on a loaded
    // machine, where this task falls behind, that happened, and the client
    // counted more GOAWAYs than this server had counted (issue 22). Raised
    // here so that every reset stream is accepted and counted; any GOAWAY h2
    // still sends by itself is counted below. Seen with this loop starved on
    // purpose (3 ms asleep per accepted stream): the old test failed (h2 sent
    // 24 GOAWAYs the server never counted: "38 connections opened for 726
    // resets (0 GOAWAYs): a reconnect storm"); this one passes.
    let handshake = h2::server::Builder::new()
        .max_pending_accept_reset_streams(PENDING_RESETS_MAX)
        .handshake(socket);
    let Ok(mut conn) = handshake.await else {
        return;
    };
    let resets = Arc::new(AtomicU64::new(0));
    let enough = Arc::new(Notify::new());
    loop {
        tokio::select! {
            accepted = conn.accept() => {
                let (request, respond) = match accepted {
                    Some(Ok(call)) => call,
                    // A GOAWAY h2 sent itself (a guard, a protocol error) is one the client hears.
                    Some(Err(e)) if e.is_go_away() && !e.is_remote() => {
                        seen.goaways.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    _ => return,
                };
                if is_money_op(&request) {
                    tokio::spawn(await_reset(respond, Arc::clone(&resets), Arc::clone(&enough), Arc::clone(&seen)));
                } else {
                    tokio::spawn(forward(upstream.clone(), request, respond));
                }
            }
            () = enough.notified() => break,
        }
    }
    seen.goaways.fetch_add(1, Ordering::SeqCst);
    conn.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
    while let Some(Ok(_)) = conn.accept().await {}
}

fn is_money_op(request: &Request<RecvStream>) -> bool {
    let path = request.uri().path();
    ["/Withdraw", "/Deposit", "/Transfer"]
        .iter()
        .any(|rpc| path.ends_with(rpc))
}

/// Never answers; counts the client's reset.
async fn await_reset(
    mut respond: SendResponse<Bytes>,
    resets: Arc<AtomicU64>,
    enough: Arc<Notify>,
    seen: Arc<Seen>,
) {
    let reset = std::future::poll_fn(|cx| respond.poll_reset(cx));
    if tokio::time::timeout(UNANSWERED_LIMIT, reset).await.is_err() {
        respond.send_reset(h2::Reason::REFUSED_STREAM);
        return;
    }
    seen.resets.fetch_add(1, Ordering::SeqCst);
    if resets.fetch_add(1, Ordering::SeqCst) + 1 == RESETS_PER_CONNECTION {
        enough.notify_one();
    }
}

/// Forwards one call to the real bank and its answer back.
async fn forward(
    upstream: SendRequest<Bytes>,
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
) {
    let (parts, mut body) = request.into_parts();
    let Ok(mut upstream) = upstream.ready().await else {
        return;
    };
    let Ok((answer, mut send)) = upstream.send_request(Request::from_parts(parts, ()), false) else {
        return;
    };
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        let _ = send.send_data(chunk, false);
    }
    let _ = send.send_data(Bytes::new(), true);
    let Ok(answer) = answer.await else { return };
    let (parts, mut body) = answer.into_parts();
    let Ok(mut tx) = respond.send_response(Response::from_parts(parts, ()), false) else {
        return;
    };
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        let _ = tx.send_data(chunk, false);
    }
    let trailers = body.trailers().await.ok().flatten().unwrap_or_default();
    let _ = tx.send_trailers(trailers);
}

/// Runs the stress-client against `addr` with `stack`; its report.
async fn run(addr: SocketAddr, stack: &str) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("report.json");
    let flags = format!(
        "--target http://{addr} --client-stack {stack} --connections {CONNECTIONS} --streams 16 \
         --duration 2s --warmup 0s --timeout 10ms --resolve-timeout 2s --mode unary --accounts 4 --quiet --json"
    );
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stress-client"))
        .args(flags.split_whitespace())
        .arg(&json)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("stress-client starts");
    let output = tokio::time::timeout(HANG_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("stress-client {flags} still running after {HANG_LIMIT:?}"))
        .expect("stress-client runs");
    let text = std::fs::read_to_string(&json).unwrap_or_else(|_| {
        panic!(
            "no report from {flags}: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    serde_json::from_str(&text).expect("the report is valid JSON")
}

/// One run on a fresh server: the report and what the server saw.
async fn measured(stack: &str) -> (Value, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let addr = resetting_server(Arc::clone(&seen)).await;
    (run(addr, stack).await, seen)
}

fn count(report: &Value, key: &str) -> u64 {
    report["connections"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("connections.{key} in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_goes_away_after_resets_gets_one_new_connection_per_goaway() {
    let (fast, seen) = measured("fast").await;
    let opened = seen.connections.load(Ordering::SeqCst);
    let resets = seen.resets.load(Ordering::SeqCst);
    let goaways = seen.goaways.load(Ordering::SeqCst);
    // About one new connection per connection the server closed. The
    // server's own counts, of resets and of GOAWAYs (h2's own included),
    // are the measure: on a loaded machine both move with the load, so the
    // bound does too. It still catches a storm: those connections are
    // dropped by the client before their handshake ends, so they carry no
    // calls, take no resets and get no GOAWAY — the old code opened 840
    // connections for 595 resets and at most 5 GOAWAYs, against a bound of
    // 4 × (5 + 2) = 28 here.
    let closed = (resets / RESETS_PER_CONNECTION).max(goaways);
    let bound = 4 * (closed + CONNECTIONS);
    eprintln!(
        "fast: {opened} opened, {resets} resets, {goaways} GOAWAYs; report {} {} ops/s {}",
        fast["connections"], fast["throughput_ops_per_s"], fast["operations"]
    );
    assert!(
        opened <= bound,
        "{opened} connections opened for {resets} resets ({goaways} GOAWAYs): a reconnect storm (bound {bound})"
    );
    assert!(
        goaways >= 2,
        "the server went away only {goaways} times: the test tests nothing"
    );
    // What the client counted is what the server accepted, give or take a
    // connection made (or accepted) as the run ended.
    let counted = count(&fast, "opened");
    assert!(
        counted.abs_diff(opened) <= CONNECTIONS,
        "the report counts {counted} connections opened, the server accepted {opened}"
    );
    let received = count(&fast, "goaways");
    assert!(
        (1..=goaways).contains(&received),
        "{received} GOAWAYs of {goaways}"
    );

    let (tonic, seen) = measured("tonic").await;
    eprintln!(
        "tonic: {} opened, {} resets, {} GOAWAYs; report {} {} ops/s {}",
        seen.connections.load(Ordering::SeqCst),
        seen.resets.load(Ordering::SeqCst),
        seen.goaways.load(Ordering::SeqCst),
        tonic["connections"],
        tonic["throughput_ops_per_s"],
        tonic["operations"]
    );
    assert!(count(&tonic, "opened") >= seen.connections.load(Ordering::SeqCst).min(CONNECTIONS));
    let ops_per_s = |r: &Value| r["throughput_ops_per_s"].as_f64().expect("throughput");
    let (fast_rate, tonic_rate) = (ops_per_s(&fast), ops_per_s(&tonic));
    assert!(
        fast_rate * 2.0 >= tonic_rate,
        "fast path {fast_rate:.0} ops/s, tonic {tonic_rate:.0} ops/s: more than 2× slower"
    );
}
