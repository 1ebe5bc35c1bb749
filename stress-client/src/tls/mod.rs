//! The TLS of `https://` targets, one client configuration for the whole
//! process and for both client stacks (the fast path and tonic dial through
//! [`crate::h2fast::dial`]): rustls with the ring provider, ALPN `h2`; the
//! server verified against `--tls-ca` (its certificates also pinned, see
//! [`pinned`]) or else the webpki roots, or not at all with
//! `--tls-insecure`; a client certificate for mutual TLS from `--tls-cert`
//! and `--tls-key`. Failures are told in words by [`explain`].

pub mod explain;
pub mod pinned;

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// The largest PEM file read (`--tls-ca`, `--tls-cert`, `--tls-key`), in bytes.
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// How `https://` targets are reached.
#[derive(Clone)]
pub struct Tls {
    pub connector: TlsConnector,
    /// Whether a client certificate is offered (for the error texts).
    pub client_cert: bool,
    /// Whether the server is not verified (`--tls-insecure`).
    pub insecure: bool,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("client_cert", &self.client_cert)
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// The TLS flags (`--tls-ca`, `--tls-cert`, `--tls-key`, `--tls-insecure`),
/// as the transport's arguments hold them. (Passed in rather than read from
/// `TransportArgs`: the transport imports this module, not the other way.)
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsFlags<'a> {
    pub tls_ca: Option<&'a Path>,
    pub tls_cert: Option<&'a Path>,
    pub tls_key: Option<&'a Path>,
    pub tls_insecure: bool,
}

/// The TLS configuration the flags ask for.
pub fn from_args(args: TlsFlags<'_>) -> Result<Tls, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if args.tls_insecure {
        let verifier = crate::insecure::AcceptAnyCertificate::new(Arc::clone(&provider));
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
    } else {
        let verifier = verifier(args.tls_ca, Arc::clone(&provider))?;
        builder.dangerous().with_custom_certificate_verifier(verifier)
    };
    let mut config = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, "--tls-cert")?;
            let key = private_key(key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("--tls-cert/--tls-key: not a usable certificate and key ({e})"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Tls {
        connector: TlsConnector::from(Arc::new(config)),
        client_cert: args.tls_cert.is_some(),
        insecure: args.tls_insecure,
    })
}

/// `--tls-ca`'s certificates pinned and as roots, or the webpki roots.
fn verifier(
    ca: Option<&Path>,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<pinned::PinnedOrChain>, String> {
    let mut roots = RootCertStore::empty();
    let pinned = match ca {
        Some(path) => {
            let certs = certificates(path, "--tls-ca")?;
            // A certificate webpki cannot use as a root (it may still be pinned).
            let _ = roots.add_parsable_certificates(certs.iter().cloned());
            certs
        }
        None => {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            Vec::new()
        }
    };
    let chain = if roots.is_empty() {
        None
    } else {
        let built = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| format!("--tls-ca: {e}"))?;
        Some(built)
    };
    Ok(Arc::new(pinned::PinnedOrChain::new(pinned, chain, provider)))
}

/// The contents of a PEM file, at most [`MAX_PEM_BYTES`].
fn read_pem(path: &Path, flag: &str) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let len = std::fs::metadata(path)
        .map_err(|e| format!("{flag} {shown}: {e}"))?
        .len();
    if len > MAX_PEM_BYTES {
        return Err(format!(
            "{flag} {shown}: {len} bytes; the limit is {MAX_PEM_BYTES}"
        ));
    }
    std::fs::read(path).map_err(|e| format!("{flag} {shown}: {e}"))
}

/// The certificates of a PEM file (at least one).
fn certificates(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_pem(path, flag)?;
    let shown = path.display();
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{flag} {shown}: not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "{flag} {shown}: no certificate (-----BEGIN CERTIFICATE-----) in it"
        ));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read_pem(path, "--tls-key")?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| format!("--tls-key {}: no private key in it: {e}", path.display()))
}
