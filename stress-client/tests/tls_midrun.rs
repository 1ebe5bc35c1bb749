//! A TLS failure in the middle of a run reaches the JSON report's
//! `errors[]` with its cause (issue 22), not as a bare "transport error".
//! A TLS front on 127.0.0.1:0 (rustls, certificates made here with rcgen)
//! forwards to a real bank in plaintext. Once the run's money ops are
//! flowing ([`SWITCH_AFTER_BYTES`] forwarded), the front "restarts" with a
//! certificate the client does not trust: it cuts every connection and
//! from then on presents the other certificate, so every reconnect fails
//! with "unknown issuer". The real `stress-client` binary is run, on each
//! client stack. Seen failing with the cause dropped: with the dialler's
//! handshake error replaced by a bare "transport error", both tests fail;
//! with the fast path's reconnect giving no reason, the fast one does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

#[path = "support/servers.rs"]
mod servers;
use servers::{listener, real_bank};

/// Bytes from the client forwarded before the front switches certificates:
/// well past the run's setup (a few hundred bytes), a few hundred money ops.
const SWITCH_AFTER_BYTES: u64 = 20_000;
/// Past this without the switch the test gives up (the run never got going).
const SWITCH_LIMIT: Duration = Duration::from_secs(30);
/// Past this a run is taken to hang: it is killed and the test fails.
const HANG_LIMIT: Duration = Duration::from_secs(60);
/// The cause the client must report.
const CAUSE: &str = "unknown issuer";

/// A self-signed CA:TRUE certificate for `localhost` (as `openssl req -x509`
/// makes): its PEM and its key's PEM.
fn certificate() -> (String, String) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

fn acceptor((cert, key): &(String, String)) -> TlsAcceptor {
    let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

/// The TLS front: `trusted` until `switched` says true, then `untrusted`
/// (and every connection made before is cut). Counts the bytes it forwards
/// from clients into `forwarded`.
async fn front(
    trusted: TlsAcceptor,
    untrusted: TlsAcceptor,
    switched: watch::Receiver<bool>,
    forwarded: Arc<AtomicU64>,
) -> SocketAddr {
    let real = real_bank().await;
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let after = *switched.borrow();
            let acceptor = if after { untrusted.clone() } else { trusted.clone() };
            let (switched, forwarded) = (switched.clone(), Arc::clone(&forwarded));
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if !after {
                    forward(tls, real, switched, forwarded).await;
                }
            });
        }
    });
    addr
}

/// Forwards one connection to the real bank until either side ends or the
/// front switches.
async fn forward<S>(
    client: S,
    real: SocketAddr,
    mut switched: watch::Receiver<bool>,
    forwarded: Arc<AtomicU64>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let Ok(upstream) = TcpStream::connect(real).await else {
        return;
    };
    let (mut client_rx, mut client_tx) = tokio::io::split(client);
    let (mut real_rx, mut real_tx) = upstream.into_split();
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = client_rx.read(&mut buf).await {
            forwarded.fetch_add(n as u64, Ordering::SeqCst);
            if real_tx.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = tokio::io::copy(&mut real_rx, &mut client_tx);
    tokio::select! {
        () = up => {}
        _ = down => {}
        _ = switched.wait_for(|now| *now) => {}
    }
}

/// Runs the stress-client against the front with `stack`, switching the
/// front's certificate once the run is under way; its report.
async fn run(stack: &str) -> Value {
    let (trusted, untrusted) = (certificate(), certificate());
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("server.pem");
    std::fs::write(&ca, &trusted.0).unwrap();
    let (switch, switched) = watch::channel(false);
    let forwarded = Arc::new(AtomicU64::new(0));
    let addr = front(
        acceptor(&trusted),
        acceptor(&untrusted),
        switched,
        Arc::clone(&forwarded),
    )
    .await;
    let json = dir.path().join("report.json");
    let flags = format!(
        "--target https://localhost:{} --client-stack {stack} --connections 2 --streams 8 \
         --duration 4s --warmup 0s --timeout 1s --mode unary --accounts 4 --quiet --json",
        addr.port()
    );
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stress-client"))
        .args(flags.split_whitespace())
        .arg(&json)
        .arg("--tls-ca")
        .arg(&ca)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("stress-client starts");
    let output = tokio::spawn(tokio::time::timeout(HANG_LIMIT, child.wait_with_output()));
    let waiting = async {
        while forwarded.load(Ordering::SeqCst) < SWITCH_AFTER_BYTES && !output.is_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(SWITCH_LIMIT, waiting).await.ok();
    let under_way = forwarded.load(Ordering::SeqCst) >= SWITCH_AFTER_BYTES;
    switch.send_replace(true);
    let output = output
        .await
        .expect("the run's task")
        .unwrap_or_else(|_| panic!("stress-client {flags} still running after {HANG_LIMIT:?}"))
        .expect("stress-client runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(under_way, "{stack}: the run never got under way: {stderr}");
    let text = std::fs::read_to_string(&json)
        .unwrap_or_else(|_| panic!("{stack}: no report from {flags}: {stderr}"));
    serde_json::from_str(&text).expect("the report is valid JSON")
}

fn assert_cause_in_errors(stack: &str, report: &Value) {
    let errors = report["errors"].as_array().expect("errors[] in the report");
    eprintln!("{stack}: operations {} errors {errors:?}", report["operations"]);
    let told: u64 = errors
        .iter()
        .filter(|e| e["message"].as_str().is_some_and(|m| m.contains(CAUSE)))
        .map(|e| e["count"].as_u64().unwrap_or(0))
        .sum();
    assert!(told > 0, "{stack}: no error says {CAUSE:?}: {errors:#?}");
    // Ops went through before the switch: the failure came mid-run.
    assert!(
        report["operations"]["approved"].as_u64().unwrap_or(0) > 0,
        "{stack}: the run failed from the start, not in the middle: {}",
        report["operations"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_changed_mid_run_is_named_in_json_errors_on_the_fast_path() {
    let report = run("fast").await;
    assert_cause_in_errors("fast", &report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_changed_mid_run_is_named_in_json_errors_on_tonic() {
    let report = run("tonic").await;
    assert_cause_in_errors("tonic", &report);
}
