//! Idle and hostile connections (issue 18, attack 1): sockets that never
//! finish their handshake are closed at `--handshake-timeout` and give their
//! permits back, on a plaintext and on a TLS port; past
//! `--max-connections-per-ip` a connection is closed at once while other
//! addresses are still served; the metrics listener closes past its own cap
//! at once and cuts slow-loris clients at its header timeout. In each case a
//! victim's health check and money call on a fresh connection answer within
//! 1 s once the timeout has passed.

#[allow(dead_code, unused_imports)]
mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bank_server::observe::metrics::{Metrics, StateSample};
use bank_server::observe::metrics_http::{serve_limited, ScrapeLimits};
use bank_server::ServerConfig;
use common::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Uri};

/// The handshake timeout of these tests: short, so that they stay quick.
const HANDSHAKE: Duration = Duration::from_millis(200);
/// What a victim's call is given once the timeout has passed.
const VICTIM_BOUND: Duration = Duration::from_secs(1);
/// How soon a connection "closed at once" must be seen closed.
const AT_ONCE: Duration = Duration::from_secs(1);
/// The metrics listener's header timeout here: longer than [`AT_ONCE`], so
/// that a connection closed at once is told from one cut at the timeout.
const SCRAPE_HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// Another loopback address, for a victim that is not the attacker's address.
const OTHER_LOOPBACK: &str = "127.0.0.2";
const TOKEN: &str = "victim-token-0123456789";

/// A server (with `/metrics`) on fresh ports: (gRPC address, metrics address).
async fn start_with(config: ServerConfig) -> (SocketAddr, SocketAddr) {
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addrs = (grpc.local_addr().unwrap(), metrics.local_addr().unwrap());
    let listeners = bank_server::Listeners {
        grpc,
        metrics: Some(metrics),
    };
    tokio::spawn(bank_server::serve(listeners, config, std::future::pending()));
    addrs
}

/// `n` connections to `addr` that send nothing.
async fn idle_sockets(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut sockets = Vec::with_capacity(n);
    for _ in 0..n {
        sockets.push(TcpStream::connect(addr).await.unwrap());
    }
    sockets
}

/// Waits until the server closes `socket` (EOF or reset); fails after `within`.
async fn closed_by_server(socket: &mut TcpStream, within: Duration) {
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(within, socket.read(&mut byte)).await;
    match read.expect("the server closes the connection") {
        Ok(0) | Err(_) => {}
        Ok(_) => panic!("the server sent bytes to a socket that sent nothing"),
    }
}

/// A channel whose connections come from `source` (any 127/8 address is loopback).
fn channel_from(source: IpAddr, addr: SocketAddr) -> Channel {
    let connector = tower::service_fn(move |_: Uri| async move {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(source, 0))?;
        let stream = socket.connect(addr).await?;
        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
    });
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_with_connector_lazy(connector)
}

type Interceptor = Box<dyn FnMut(Request<()>) -> Result<Request<()>, Status> + Send + Sync>;

/// A bank client that sends `authorization: Bearer TOKEN`.
fn with_token(channel: &Channel) -> BankClient<InterceptedService<Channel, Interceptor>> {
    let value: tonic::metadata::MetadataValue<_> = format!("Bearer {TOKEN}").parse().unwrap();
    let add: Interceptor = Box::new(move |mut request: Request<()>| {
        request.metadata_mut().insert("authorization", value.clone());
        Ok(request)
    });
    BankClient::with_interceptor(channel.clone(), add)
}

/// A health check and a deposit of 1 on `account`, over `channel`, within `bound`.
async fn victim_is_served(channel: &Channel, account: &str, rid: &str, bound: Duration) {
    let started = Instant::now();
    let calls = async {
        let mut health = HealthClient::new(channel.clone());
        let check = HealthCheckRequest {
            service: String::new(),
        };
        let serving = ok(health.check(check).await);
        assert_eq!(serving.status, ServingStatus::Serving as i32);
        ok(with_token(channel).deposit(deposit(account, 1, rid)).await)
    };
    let done = tokio::time::timeout(bound, calls).await;
    let result = done.unwrap_or_else(|_| panic!("victim not served within {bound:?}"));
    assert_eq!(result.outcome, Outcome::Approved as i32);
    eprintln!("victim served in {:?}", started.elapsed());
}

/// Opens `account` with `balance`, on a connection closed before returning.
async fn open_account(addr: SocketAddr, account: &str, balance: u64) {
    let channel = connect(addr).await.unwrap();
    ok(with_token(&channel)
        .open_account(open_req(account, balance))
        .await);
}

/// The body of `GET /metrics` from `addr`, within [`PATIENCE`].
async fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(PATIENCE, stream.read_to_string(&mut out))
        .await
        .expect("scrape answers")
        .unwrap();
    assert!(
        out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200"),
        "{out}"
    );
    out
}

/// The value of `bank_connections_refused_total{listener,reason}`, 0 if absent.
fn refused(text: &str, listener: &str, reason: &str) -> u64 {
    let series = format!("bank_connections_refused_total{{listener=\"{listener}\",reason=\"{reason}\"}}");
    text.lines()
        .find_map(|l| l.strip_prefix(&series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

/// A server config with the short handshake timeout and `max` connections.
fn limited(max: usize, per_ip: usize) -> ServerConfig {
    config(|c| {
        c.max_connections = max;
        c.max_connections_per_ip = per_ip;
        c.handshake_timeout = HANDSHAKE;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_are_closed_at_the_handshake_timeout_and_a_fresh_client_is_then_served() {
    const MAX: usize = 3;
    let (addr, metrics) = start_with(limited(MAX, MAX)).await;
    open_account(addr, "victim", 0).await;
    // The attack: every permit (and the address's every slot) held by a socket that says nothing.
    let mut idle = idle_sockets(addr, MAX).await;
    let attacked = Instant::now();
    let victim = connect(addr);
    let victim = tokio::time::timeout(HANDSHAKE + VICTIM_BOUND, victim).await;
    let victim = victim.expect("the victim connects").unwrap();
    victim_is_served(&victim, "victim", "v1", HANDSHAKE + VICTIM_BOUND).await;
    for socket in &mut idle {
        closed_by_server(socket, PATIENCE).await;
    }
    assert!(attacked.elapsed() >= HANDSHAKE, "not closed before the timeout");
    let text = scrape(metrics).await;
    assert_eq!(refused(&text, "grpc", "handshake_timeout"), MAX as u64, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_is_not_http2_is_closed_at_once_and_counted() {
    let config = config(|c| c.handshake_timeout = PATIENCE); // closed for what it sent, not for time
    let (addr, metrics) = start_with(config).await;
    let mut http1 = TcpStream::connect(addr).await.unwrap();
    http1
        .write_all(b"GET / HTTP/1.1\r\nHost: bank\r\nUser-Agent: a-long-enough-header\r\n\r\n")
        .await
        .unwrap();
    closed_by_server(&mut http1, AT_ONCE).await;
    let text = scrape(metrics).await;
    assert_eq!(refused(&text, "grpc", "handshake_failed"), 1, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_per_ip_cap_a_connection_is_closed_at_once_and_other_addresses_are_served() {
    const PER_IP: usize = 2;
    let config = config(|c| {
        c.max_connections = 3;
        c.max_connections_per_ip = PER_IP;
        c.handshake_timeout = PATIENCE; // the idle sockets stay for the whole test
    });
    let (addr, metrics) = start_with(config).await;
    let _held = idle_sockets(addr, PER_IP).await;
    // More from the same address: each closed at once, none taking the last permit.
    for mut extra in idle_sockets(addr, 5).await {
        closed_by_server(&mut extra, AT_ONCE).await;
    }
    let other: IpAddr = OTHER_LOOPBACK.parse().unwrap();
    let victim = channel_from(other, addr);
    // Opened and used by the victim on its own (the last) permit.
    let mut bank = with_token(&victim);
    let opened = tokio::time::timeout(VICTIM_BOUND, bank.open_account(open_req("v", 0)));
    ok(opened
        .await
        .expect("the victim from another address is served at once"));
    victim_is_served(&victim, "v", "v1", VICTIM_BOUND).await;
    let text = scrape(metrics).await;
    assert_eq!(refused(&text, "grpc", "per_ip"), 5, "{text}");
}

/// PEM files of a throwaway CA and a server certificate for `localhost`, and a token file.
struct Pki {
    dir: tempfile::TempDir,
    ca: String,
}

impl Pki {
    fn new() -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("server.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
        std::fs::write(dir.path().join("tokens"), format!("victim {TOKEN}\n")).unwrap();
        Pki { dir, ca }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_tls_port_sockets_without_a_client_hello_are_closed_at_the_timeout_with_tokens_on() {
    const MAX: usize = 3;
    let pki = Pki::new();
    let mut config = limited(MAX, MAX);
    config.tls = Some(bank_server::admission::tls::TlsFiles {
        cert: pki.path("server.pem"),
        key: pki.path("server.key"),
        client_ca: None,
    });
    config.auth_tokens = Some(pki.path("tokens"));
    let (addr, metrics) = start_with(config).await;
    let mut idle = idle_sockets(addr, MAX).await;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca))
        .domain_name("localhost");
    let endpoint = Endpoint::from_shared(format!("https://{addr}")).unwrap();
    let victim = endpoint.tls_config(tls).unwrap().connect_lazy();
    let mut bank = with_token(&victim);
    let opened = bank.open_account(open_req("victim", 0));
    let opened = tokio::time::timeout(HANDSHAKE + VICTIM_BOUND, opened).await;
    ok(opened.expect("the victim is served once the idle sockets are closed"));
    victim_is_served(&victim, "victim", "v1", VICTIM_BOUND).await;
    for socket in &mut idle {
        closed_by_server(socket, PATIENCE).await;
    }
    let text = scrape(metrics).await;
    assert_eq!(refused(&text, "grpc", "handshake_timeout"), MAX as u64, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_listener_closes_past_its_cap_at_once_and_cuts_slow_clients_at_its_timeout() {
    const CAP: usize = 2;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ScrapeLimits {
        header_read_timeout: SCRAPE_HEADER_TIMEOUT,
        max_connections: CAP,
        max_lifetime: PATIENCE,
    };
    let metrics = Arc::new(Metrics::new().unwrap());
    let sampler: bank_server::observe::metrics_http::Sampler = Arc::new(StateSample::default);
    tokio::spawn(serve_limited(listener, metrics, sampler, limits));
    // The slow-loris: one sends nothing, one half a request.
    let mut loris = idle_sockets(addr, CAP).await;
    loris[1].write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
    let mut over = TcpStream::connect(addr).await.unwrap();
    closed_by_server(&mut over, AT_ONCE).await;
    for socket in &mut loris {
        closed_by_server(socket, PATIENCE).await;
    }
    let text = tokio::time::timeout(VICTIM_BOUND, scrape(addr)).await;
    let text = text.expect("a scrape is served once the slow clients are cut");
    assert_eq!(refused(&text, "metrics", "max_connections"), 1, "{text}");
    assert_eq!(refused(&text, "metrics", "header_timeout"), CAP as u64, "{text}");
}
