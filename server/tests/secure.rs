//! The server exposed for real: TLS (certificates made here with rcgen, no
//! keys checked in), mutual TLS, and bearer tokens with per-account
//! ownership. Plaintext is refused on a TLS port; a call without a token or
//! with a wrong one is UNAUTHENTICATED; every RPC on another principal's
//! account is PERMISSION_DENIED and changes nothing; health stays open.

#[allow(dead_code, unused_imports)]
mod common;

use std::path::{Path, PathBuf};

use bank_server::admission::tls::TlsFiles;
use common::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-9876543210";

/// PEM files of a throwaway CA, a server certificate for `localhost` and a client certificate.
struct Pki {
    dir: PathBuf,
    ca: String,
    client: (String, String),
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("bank-secure-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |names: Vec<String>| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let server = leaf(vec!["localhost".into()]);
        let client = leaf(vec!["client".into()]);
        let pki = Pki { dir, ca, client };
        pki.write("server.pem", &server.0);
        pki.write("server.key", &server.1);
        pki.write("ca.pem", &pki.ca);
        pki.write(
            "tokens",
            &format!("# principals\nalice {ALICE}\nbob {BOB} # the other one\n"),
        );
        pki
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join(name), text).unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn tls(&self, mutual: bool) -> TlsFiles {
        TlsFiles {
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            client_ca: mutual.then(|| self.path("ca.pem")),
        }
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts a server with TLS (mutual if asked) and the tokens; returns its address.
async fn start_secure(pki: &Pki, mutual: bool, tokens: Option<&Path>) -> std::net::SocketAddr {
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = grpc.local_addr().unwrap();
    let config = config(|c| {
        c.tls = Some(pki.tls(mutual));
        c.auth_tokens = tokens.map(Path::to_owned);
    });
    let listeners = bank_server::Listeners { grpc, metrics: None };
    tokio::spawn(bank_server::serve(listeners, config, std::future::pending()));
    addr
}

/// A TLS channel that trusts the test CA (and presents the client certificate if asked).
async fn tls_channel(
    pki: &Pki,
    addr: std::net::SocketAddr,
    with_cert: bool,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca))
        .domain_name("localhost");
    if with_cert {
        tls = tls.identity(Identity::from_pem(&pki.client.0, &pki.client.1));
    }
    Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

type Interceptor = Box<dyn FnMut(Request<()>) -> Result<Request<()>, Status> + Send + Sync>;
type Client = BankClient<InterceptedService<Channel, Interceptor>>;

/// A bank client that sends `authorization: Bearer token` (or nothing).
fn as_principal(channel: &Channel, token: Option<&str>) -> Client {
    let value: Option<tonic::metadata::MetadataValue<_>> =
        token.map(|t| format!("Bearer {t}").parse().unwrap());
    let add: Interceptor = Box::new(move |mut request: Request<()>| {
        if let Some(v) = &value {
            request.metadata_mut().insert("authorization", v.clone());
        }
        Ok(request)
    });
    BankClient::with_interceptor(channel.clone(), add)
}

async fn balance_and_sequence(client: &mut Client, id: &str) -> (u64, u64) {
    let a = ok(client.get_balance(get_balance(id)).await);
    (a.balance, a.sequence)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_tokens_refuse_strangers_and_other_principals_changing_nothing() {
    let pki = Pki::new("tokens");
    let addr = start_secure(&pki, false, Some(&pki.path("tokens"))).await;
    // Plaintext on a TLS port: no call gets through.
    if let Ok(plain) = connect(addr).await {
        let refused = BankClient::new(plain).get_balance(get_balance("a")).await;
        assert!(refused.is_err(), "plaintext must be refused");
    }
    let channel = tls_channel(&pki, addr, false).await.expect("TLS connects");
    let (mut alice, mut bob) = (
        as_principal(&channel, Some(ALICE)),
        as_principal(&channel, Some(BOB)),
    );
    for mut stranger in [
        as_principal(&channel, None),
        as_principal(&channel, Some("wrong-token-000000000")),
    ] {
        assert_eq!(
            code(stranger.open_account(open_req("s", 1)).await),
            Code::Unauthenticated
        );
        assert_eq!(
            code(stranger.get_balance(get_balance("a")).await),
            Code::Unauthenticated
        );
    }
    ok(alice.open_account(open_req("a", 100)).await);
    ok(bob.open_account(open_req("b", 100)).await);
    ok(alice.withdraw(withdraw("a", 10, "a-w1")).await);
    let before = balance_and_sequence(&mut alice, "a").await;
    bob_is_refused_on_every_rpc(&mut bob).await;
    assert_eq!(
        balance_and_sequence(&mut alice, "a").await,
        before,
        "refused calls change nothing"
    );
    assert_eq!(balance_and_sequence(&mut bob, "b").await, (100, 0));
    for rid in ["x-dep", "x-wd", "x-stream", "x-tr", "x-op"] {
        let seen = ok(alice.get_operation(get_op("a", rid)).await);
        assert!(
            !seen.replayed,
            "{rid}: nothing was recorded or fenced by a refused call"
        );
    }
    // The target of a transfer may be anyone's; the source must be the caller's.
    ok(bob.transfer(transfer("b", "a", 5, "b-t1")).await);
    assert_eq!(balance_and_sequence(&mut alice, "a").await.0, before.0 + 5);
    let mut health = HealthClient::new(channel.clone());
    let serving = ok(health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await);
    assert_eq!(
        serving.status,
        ServingStatus::Serving as i32,
        "health stays open without a token"
    );
}

/// Bob calls every RPC on alice's account "a": each is PERMISSION_DENIED.
async fn bob_is_refused_on_every_rpc(bob: &mut Client) {
    let denied = Code::PermissionDenied;
    assert_eq!(code(bob.get_balance(get_balance("a")).await), denied);
    assert_eq!(code(bob.deposit(deposit("a", 1, "x-dep")).await), denied);
    assert_eq!(code(bob.withdraw(withdraw("a", 1, "x-wd")).await), denied);
    assert_eq!(code(bob.transfer(transfer("a", "b", 1, "x-tr")).await), denied);
    assert_eq!(code(bob.get_operation(get_op("a", "x-op")).await), denied);
    let mut answers = ok(bob
        .withdraw_stream(tokio_stream::iter([withdraw("a", 1, "x-stream")]))
        .await);
    assert_eq!(answers.message().await.unwrap_err().code(), denied);
    assert_eq!(
        code(bob.open_account(open_req("a", 1)).await),
        Code::AlreadyExists
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_a_client_certificate() {
    let pki = Pki::new("mtls");
    let addr = start_secure(&pki, true, None).await;
    if let Ok(channel) = tls_channel(&pki, addr, false).await {
        let refused = BankClient::new(channel).open_account(open_req("m", 1)).await;
        assert!(refused.is_err(), "a client without a certificate is refused");
    }
    let channel = tls_channel(&pki, addr, true).await.expect("mTLS connects");
    let mut bank = BankClient::new(channel);
    ok(bank.open_account(open_req("m", 1)).await);
    assert_eq!(ok(bank.get_balance(get_balance("m")).await).balance, 1);
}
