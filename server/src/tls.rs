//! `--tls-cert`/`--tls-key` (PEM) and `--tls-client-ca` (mutual TLS): the
//! server's TLS settings, through tonic's rustls support. With them the
//! port speaks only TLS.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// The largest PEM file read, in bytes.
pub const MAX_PEM_BYTES: u64 = 1 << 20;

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

impl TlsFiles {
    /// The tonic TLS configuration these files describe (read now).
    pub fn server_config(&self) -> Result<ServerTlsConfig, String> {
        let identity = Identity::from_pem(read_pem(&self.cert)?, read_pem(&self.key)?);
        let mut config = ServerTlsConfig::new().identity(identity);
        if let Some(ca) = &self.client_ca {
            config = config.client_ca_root(Certificate::from_pem(read_pem(ca)?));
        }
        Ok(config)
    }
}
