//! TLS failures in words that say what to do: which certificate check
//! failed and why, that the server wants a client certificate, that the
//! server does not speak TLS. rustls' own text follows in parentheses.

use std::io;

use rustls::{AlertDescription, CertificateError, Error};

/// What went wrong with TLS to `host`; `client_cert`: whether one was offered.
pub fn tls_error(e: &Error, host: &str, client_cert: bool) -> String {
    let why = match e {
        Error::InvalidCertificate(cert) => certificate(cert, host),
        Error::AlertReceived(alert) => alert_received(*alert, client_cert),
        Error::InvalidMessage(_) | Error::InappropriateMessage { .. } => {
            "the server does not speak TLS (its answer is no TLS record): use http://".into()
        }
        Error::NoApplicationProtocol => "the server does not offer HTTP/2 (ALPN h2) over TLS".into(),
        _ => return format!("TLS: {e}"),
    };
    format!("TLS: {why} ({e})")
}

fn certificate(e: &CertificateError, host: &str) -> String {
    match e {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("the server's certificate is not valid for name {host}")
        }
        CertificateError::UnknownIssuer => "the server's certificate has an unknown issuer: \
             pass its CA (or the certificate itself) with --tls-ca"
            .into(),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the server's certificate has expired".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the server's certificate is not valid yet".into()
        }
        CertificateError::Other(other) if format!("{other}").contains("CaUsedAsEndEntity") => {
            "the server's certificate is a CA certificate (CA:TRUE) of an unknown issuer: \
             to trust it, pass that very certificate with --tls-ca (pinned)"
                .into()
        }
        _ => "the server's certificate is refused".into(),
    }
}

fn alert_received(alert: AlertDescription, client_cert: bool) -> String {
    use AlertDescription::*;
    match alert {
        CertificateRequired if !client_cert => {
            "the server asked for a client certificate: use --tls-cert/--tls-key".into()
        }
        // TLS 1.2 says only this when a client certificate is missing.
        HandshakeFailure if !client_cert => "the server ended the handshake (handshake_failure): \
             if it wants a client certificate, use --tls-cert/--tls-key"
            .into(),
        BadCertificate
        | UnknownCA
        | CertificateUnknown
        | UnsupportedCertificate
        | CertificateExpired
        | CertificateRevoked
        | AccessDenied
            if client_cert =>
        {
            "the server refused our client certificate (--tls-cert)".into()
        }
        _ => format!("the server ended the handshake with alert {alert:?}"),
    }
}

/// `e` in words when it carries a TLS error (tokio-rustls wraps them in
/// `io::Error`), else as it is.
pub fn io_error(e: &io::Error, host: &str, client_cert: bool) -> String {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
        Some(tls) => tls_error(tls, host, client_cert),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_says_what_to_do() {
        let cert = |e| Error::InvalidCertificate(e);
        let cases = [
            (cert(CertificateError::UnknownIssuer), false, "unknown issuer"),
            (
                cert(CertificateError::NotValidForName),
                false,
                "not valid for name h.example",
            ),
            (
                Error::AlertReceived(AlertDescription::CertificateRequired),
                false,
                "use --tls-cert/--tls-key",
            ),
            (
                Error::AlertReceived(AlertDescription::HandshakeFailure),
                false,
                "use --tls-cert/--tls-key",
            ),
            (
                Error::AlertReceived(AlertDescription::BadCertificate),
                true,
                "refused our client certificate",
            ),
            (
                Error::AlertReceived(AlertDescription::BadCertificate),
                false,
                "alert BadCertificate",
            ),
            (Error::NoApplicationProtocol, false, "ALPN h2"),
        ];
        for (e, client_cert, want) in cases {
            let text = tls_error(&e, "h.example", client_cert);
            assert!(text.contains(want), "{e:?}: {text}");
        }
        let wrapped = io::Error::new(io::ErrorKind::InvalidData, cert(CertificateError::UnknownIssuer));
        assert!(io_error(&wrapped, "h", false).contains("unknown issuer"));
    }
}
