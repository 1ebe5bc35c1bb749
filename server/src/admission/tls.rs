//! `--tls-cert`/`--tls-key` (PEM) and `--tls-client-ca` (mutual TLS): the
//! server's TLS settings, as a rustls acceptor (ring, ALPN `h2`). With them
//! the port speaks only TLS. The handshake itself runs in
//! [`crate::admission::handshake`], under `--handshake-timeout`, before tonic sees the
//! connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// The largest PEM file read, in bytes.
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// The one application protocol offered: HTTP/2 (gRPC).
const ALPN_H2: &[u8] = b"h2";

/// Where the server's certificate, key and (for mTLS) client CA are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, PEM.
    pub cert: PathBuf,
    /// The private key, PEM.
    pub key: PathBuf,
    /// CA certificates that client certificates must chain to; `None`: no client certificates.
    pub client_ca: Option<PathBuf>,
}

/// Reads a PEM file of at most [`MAX_PEM_BYTES`].
fn read_pem(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let len = std::fs::metadata(path)
        .map_err(|e| format!("{shown}: {e}"))?
        .len();
    if len > MAX_PEM_BYTES {
        return Err(format!("{shown}: {len} bytes; the limit is {MAX_PEM_BYTES}"));
    }
    std::fs::read(path).map_err(|e| format!("{shown}: {e}"))
}

/// The certificates of a PEM file (at least one).
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let pem = read_pem(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{shown}: not a PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{shown}: no certificate in it"));
    }
    Ok(certs)
}

/// A verifier of client certificates that chain to the CAs in `path`.
fn client_verifier(
    path: &Path,
) -> Result<Arc<dyn tokio_rustls::rustls::server::danger::ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certificates(path)?);
    if added == 0 {
        return Err(format!("{}: no usable CA certificate in it", path.display()));
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::new(ring::default_provider()))
        .build()
        .map_err(|e| format!("{}: {e}", path.display()))
}

impl TlsFiles {
    /// The acceptor these files describe (read now): the chain and key, client
    /// certificates required when `client_ca` is set, ALPN `h2`.
    pub fn acceptor(&self) -> Result<TlsAcceptor, String> {
        let chain = certificates(&self.cert)?;
        let key = PrivateKeyDer::from_pem_slice(&read_pem(&self.key)?)
            .map_err(|e| format!("{}: no private key: {e}", self.key.display()))?;
        let builder = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => builder.with_client_cert_verifier(client_verifier(ca)?),
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| format!("{} and {}: {e}", self.cert.display(), self.key.display()))?;
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}
