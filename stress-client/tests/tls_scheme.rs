//! Over TLS both client stacks say so in `:scheme` (issue 22): tonic is
//! handed the fast path's dialled TLS connections through an `http://`
//! endpoint, and its requests used to carry `:scheme http` while the fast
//! path's carried `https`. A raw HTTP/2 server behind rustls (certificate
//! made here with rcgen, pinned with `--tls-ca`) records the scheme of every
//! request and answers NOT_FOUND. Seen failing with `.origin(..)` removed
//! from `transport::endpoint`: tonic's request carried `http`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bank::v1 as pb;
use bytes::{Bytes, BytesMut};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use stress_client::h2fast::{self, framing, unary, CallHeaders, FastCall};
use stress_client::transport::{self, TransportArgs};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tonic::Code;

/// The schemes the server saw, in order.
type Schemes = Arc<Mutex<Vec<String>>>;

/// A TLS HTTP/2 server on 127.0.0.1:0 with `cert`/`key` (PEM); its port.
async fn recording_server(cert: &str, key: &str, schemes: Schemes) -> u16 {
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
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, schemes) = (acceptor.clone(), Arc::clone(&schemes));
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut conn) = h2::server::handshake(tls).await else {
                    return;
                };
                while let Some(Ok((request, mut respond))) = conn.accept().await {
                    let scheme = request.uri().scheme_str().unwrap_or("(none)").to_owned();
                    schemes.lock().unwrap().push(scheme);
                    // Trailers-only NOT_FOUND.
                    let answer = http::Response::builder()
                        .header("content-type", "application/grpc")
                        .header("grpc-status", "5")
                        .header("grpc-message", "recorded")
                        .body(())
                        .unwrap();
                    let _ = respond.send_response(answer, true);
                }
            });
        }
    });
    port
}

fn withdraw() -> pb::WithdrawRequest {
    pb::WithdrawRequest {
        account_id: "nobody".into(),
        amount: 1,
        request_id: "r-1".into(),
        wait_for_funds: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_stacks_send_scheme_https_over_tls() {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("server.pem");
    std::fs::write(&pem, &cert).unwrap();
    let schemes = Schemes::default();
    let port = recording_server(&cert, &key.serialize_pem(), Arc::clone(&schemes)).await;
    let target = format!("https://localhost:{port}");
    let args = TransportArgs {
        tls_ca: Some(pem),
        ..TransportArgs::default()
    };
    transport::install(&args).unwrap();

    // tonic, on a connection the fast path's dialler made.
    let endpoint = transport::endpoint(&target).unwrap();
    let channel = tokio::time::timeout(Duration::from_secs(10), transport::connect(&endpoint, &target))
        .await
        .expect("tonic connects in time")
        .expect("tonic connects over TLS");
    let status = transport::bank(channel).withdraw(withdraw()).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // The fast path.
    let headers = CallHeaders {
        timeout: Some(Duration::from_secs(10)),
        metadata: Vec::new(),
        tls: Some(stress_client::tls::from_args(args.tls_flags()).unwrap()),
    };
    let conn = h2fast::connect(&target, &headers)
        .await
        .expect("fast path over TLS");
    let body: Bytes = framing::encode(&withdraw(), &mut BytesMut::new()).unwrap();
    let answer = unary::call::<pb::OperationResult>(&conn, FastCall::Withdraw, body).await;
    assert_eq!(answer.unwrap_err().code(), Code::NotFound);

    let seen = schemes.lock().unwrap().clone();
    assert_eq!(
        seen,
        ["https", "https"],
        "tonic's request first, then the fast path's"
    );
}
