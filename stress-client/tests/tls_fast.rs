//! TLS end to end against a real bank-server on 127.0.0.1:0 with
//! certificates made here (rcgen; no keys checked in): a self-signed CA:TRUE
//! server certificate (as `openssl req -x509` makes) pinned with `--tls-ca`
//! carries money ops on the fast path and a whole run on both client
//! stacks; mutual TLS passes with a client certificate and is refused
//! without one, saying so; plaintext against the TLS port says "use
//! https://" at once; a wrong CA says "unknown issuer"; a wrong name says
//! so; a closed port says "connection refused". Each was seen failing with
//! its fix off: without the pin every test fails (`CaUsedAsEndEntity`);
//! without the 0x15/0x16 check plaintext says only "the server closed the
//! connection"; without the probe before tonic connects, a missing client
//! certificate says only "operation was canceled: connection closed".

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bank::v1 as pb;
use bank_server::admission::tls::TlsFiles;
use bytes::BytesMut;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use stress_client::h2fast::{self, framing, unary, CallHeaders, FastCall};
use stress_client::transport::TransportArgs;
use tokio::net::TcpListener;
use tonic::Code;

/// Plaintext against a TLS port must fail well before a connection times out (5 s).
const FAIL_FAST_LIMIT: Duration = Duration::from_secs(4);

/// PEM files: a self-signed CA:TRUE server certificate for `localhost`, a
/// client CA with a client certificate, and an unrelated CA.
struct Pki {
    dir: tempfile::TempDir,
}

fn self_signed_ca(names: Vec<String>) -> (CertificateParams, KeyPair, String) {
    let mut params = CertificateParams::new(names).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

impl Pki {
    fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        let (_, server_key, server) = self_signed_ca(vec!["localhost".into()]);
        pki.write("server.pem", &server);
        pki.write("server.key", &server_key.serialize_pem());
        let (ca_params, ca_key, ca) = self_signed_ca(Vec::new());
        pki.write("client-ca.pem", &ca);
        let issuer = Issuer::new(ca_params, ca_key);
        let client_key = KeyPair::generate().unwrap();
        let client = CertificateParams::new(vec!["client".into()])
            .unwrap()
            .signed_by(&client_key, &issuer)
            .unwrap();
        pki.write("client.pem", &client.pem());
        pki.write("client.key", &client_key.serialize_pem());
        pki.write("other-ca.pem", &self_signed_ca(vec!["localhost".into()]).2);
        pki
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

/// A bank-server with TLS (mutual with `client_ca`) on 127.0.0.1:0; its port.
async fn tls_bank(pki: &Pki, client_ca: Option<&Path>) -> u16 {
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = grpc.local_addr().unwrap().port();
    let mut config = bank_server::ServerConfig::default();
    config.ledger.processing_delay = Duration::ZERO;
    config.tls = Some(TlsFiles {
        cert: pki.path("server.pem"),
        key: pki.path("server.key"),
        client_ca: client_ca.map(Path::to_owned),
    });
    let listeners = bank_server::Listeners { grpc, metrics: None };
    tokio::spawn(bank_server::serve(listeners, config, std::future::pending()));
    port
}

/// A port nothing listens on (bound, then closed).
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// A short run of the binary; its exit code, stderr and how long it took.
async fn stress(args: &[String]) -> (i32, String, Duration) {
    let started = Instant::now();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_stress-client"))
        .args(args)
        .args([
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--connections",
            "2",
            "--streams",
            "8",
        ])
        .args(["--accounts", "4", "--quiet"])
        .output()
        .await
        .expect("stress-client runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().expect("exited"), stderr, started.elapsed())
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The fast path's headers with the TLS of `args`.
fn fast_headers(args: &TransportArgs) -> CallHeaders {
    CallHeaders {
        timeout: Some(Duration::from_secs(10)),
        metadata: Vec::new(),
        tls: Some(stress_client::tls::from_args(args.tls_flags()).expect("TLS set up")),
    }
}

fn ca_args(ca: PathBuf) -> TransportArgs {
    TransportArgs {
        tls_ca: Some(ca),
        ..TransportArgs::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fast_path_speaks_tls_to_a_pinned_self_signed_ca_certificate() {
    let pki = Pki::new();
    let port = tls_bank(&pki, None).await;
    let headers = fast_headers(&ca_args(pki.path("server.pem")));
    let conn = h2fast::connect(&format!("https://localhost:{port}"), &headers)
        .await
        .expect("a TLS connection on the fast path");
    let body = framing::encode(
        &pb::WithdrawRequest {
            account_id: "nobody".into(),
            amount: 1,
            request_id: "r-1".into(),
            wait_for_funds: false,
        },
        &mut BytesMut::new(),
    )
    .unwrap();
    let answer = unary::call::<pb::OperationResult>(&conn, FastCall::Withdraw, body).await;
    // The bank's own answer, over TLS.
    assert_eq!(answer.unwrap_err().code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fast_path_says_why_tls_failed() {
    let pki = Pki::new();
    let port = tls_bank(&pki, None).await;
    let cases = [
        (
            format!("https://localhost:{port}"),
            "other-ca.pem",
            "unknown issuer",
        ),
        (
            format!("https://127.0.0.1:{port}"),
            "server.pem",
            "not valid for name 127.0.0.1",
        ),
        (
            format!("http://localhost:{port}"),
            "server.pem",
            "the server speaks TLS: use https://",
        ),
    ];
    for (target, ca, want) in cases {
        let headers = fast_headers(&ca_args(pki.path(ca)));
        let started = Instant::now();
        let err = h2fast::connect(&target, &headers).await.expect_err(&target);
        assert!(err.contains(want), "{target} with {ca}: {err}");
        assert!(
            started.elapsed() < FAIL_FAST_LIMIT,
            "{target}: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_tls_passes_on_both_stacks_with_the_pinned_certificate() {
    let pki = Pki::new();
    let port = tls_bank(&pki, None).await;
    let target = format!("https://localhost:{port}");
    for stack in ["fast", "tonic"] {
        let args = strings(&[
            "--target",
            &target,
            "--tls-ca",
            &pki.arg("server.pem"),
            "--client-stack",
            stack,
        ]);
        let (code, stderr, _) = stress(&args).await;
        assert_eq!(code, 0, "{stack}: {stderr}");
    }
    // --tls-insecure dials through the same path, verifying nothing.
    let (code, stderr, _) = stress(&strings(&["--target", &target, "--tls-insecure"])).await;
    assert_eq!(code, 0, "--tls-insecure: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_passes_with_a_client_certificate_and_says_why_without() {
    let pki = Pki::new();
    let port = tls_bank(&pki, Some(&pki.path("client-ca.pem"))).await;
    let target = format!("https://localhost:{port}");
    let base = strings(&["--target", &target, "--tls-ca", &pki.arg("server.pem")]);
    let mut with = base.clone();
    with.extend(strings(&[
        "--tls-cert",
        &pki.arg("client.pem"),
        "--tls-key",
        &pki.arg("client.key"),
    ]));
    let (code, stderr, _) = stress(&with).await;
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr, _) = stress(&base).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("the server asked for a client certificate: use --tls-cert/--tls-key"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_failures_of_a_run_print_their_cause() {
    let pki = Pki::new();
    let port = tls_bank(&pki, None).await;
    let cases = [
        (
            format!("http://localhost:{port}"),
            "the server speaks TLS: use https://",
        ),
        (format!("https://localhost:{port}"), "unknown issuer"),
        (
            format!("http://127.0.0.1:{}", closed_port().await),
            "connection refused",
        ),
    ];
    for (target, want) in cases {
        let args = strings(&["--target", &target, "--tls-ca", &pki.arg("other-ca.pem")]);
        let (code, stderr, took) = stress(&args).await;
        assert_eq!(code, 2, "{target}: {stderr}");
        assert!(stderr.contains(want), "{target}: {stderr}");
        assert!(took < FAIL_FAST_LIMIT, "{target}: took {took:?}");
    }
}
