//! `--tls-ca` as grpcio and Go clients read it: a certificate in the file
//! that the server presents as its own, byte for byte, is trusted as it is
//! (pinned), even when it is a CA certificate (`openssl req -x509` marks
//! one CA:TRUE, which webpki refuses as a server's end certificate:
//! `CaUsedAsEndEntity`). Its name must still match the target's host, and
//! the handshake's signatures are still verified. Any other certificate
//! goes through normal chain validation ([`WebPkiServerVerifier`]).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};

/// Pinned certificates first, else the chain to the roots.
#[derive(Debug)]
pub struct PinnedOrChain {
    pinned: Vec<CertificateDer<'static>>,
    /// `None` when there is no root to chain to (every certificate is then
    /// of an unknown issuer unless pinned).
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl PinnedOrChain {
    pub fn new(
        pinned: Vec<CertificateDer<'static>>,
        chain: Option<Arc<WebPkiServerVerifier>>,
        provider: Arc<CryptoProvider>,
    ) -> PinnedOrChain {
        PinnedOrChain {
            pinned,
            chain,
            provider,
        }
    }
}

/// Whether `cert` names `name` (a DNS name or an IP address in its SANs).
fn names(cert: &CertificateDer<'_>, name: &ServerName<'_>) -> Result<(), Error> {
    let parsed = webpki::EndEntityCert::try_from(cert)
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    parsed
        .verify_is_valid_for_subject_name(name)
        .map_err(|_| Error::InvalidCertificate(CertificateError::NotValidForName))
}

impl ServerCertVerifier for PinnedOrChain {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if self.pinned.iter().any(|pin| pin.as_ref() == end_entity.as_ref()) {
            names(end_entity, server_name)?;
            return Ok(ServerCertVerified::assertion());
        }
        match &self.chain {
            Some(chain) => {
                chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(Error::InvalidCertificate(CertificateError::UnknownIssuer)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
