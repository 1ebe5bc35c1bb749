//! How the stress-client reaches a real server: TLS for `https://` targets
//! (`--tls-ca`, else the webpki roots), a bearer token (`--token`, sent as
//! `authorization: Bearer TOKEN`) and extra metadata (`--metadata KEY=VALUE`)
//! on every call, added by one client interceptor ([`Bank`]). Installed once
//! per process from the flags ([`install`]); the embedded demo sets none.
//! `--tls-insecure` skips certificate verification ([`crate::insecure`]).
//! `--client-stack` picks how money ops travel: the fast path
//! ([`crate::h2fast`], plaintext only; the default) or tonic.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bank::v1::bank_client::BankClient;
use clap::{Args, ValueEnum};
use http::{HeaderName, HeaderValue};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

/// The largest CA file read, in bytes.
const MAX_CA_BYTES: u64 = 1 << 20;
/// The most `--metadata` pairs accepted.
const MAX_METADATA: usize = 64;

/// The transport flags of a run.
#[derive(Clone, Default, Args)]
pub struct TransportArgs {
    /// CA certificate(s) (PEM) that an `https://` target's certificate must
    /// chain to; without it the webpki roots are trusted.
    #[arg(long, value_name = "PATH")]
    pub tls_ca: Option<PathBuf>,

    /// DANGER: do not verify an `https://` target's certificate (self-signed
    /// labs only: anyone on the path can impersonate the server). Prefer --tls-ca.
    #[arg(long, conflicts_with = "tls_ca")]
    pub tls_insecure: bool,

    /// Bearer token sent with every call as `authorization: Bearer TOKEN`.
    #[arg(long, value_name = "TOKEN", env = "BANK_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Extra metadata sent with every call (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,

    /// How money ops travel: `fast` (HTTP/2 driven directly, a few µs of
    /// client CPU per op; plaintext http:// targets only, TLS runs use tonic)
    /// or `tonic` (tonic's client stack, as every other call).
    #[arg(long, value_enum, default_value_t = ClientStack::Fast)]
    pub client_stack: ClientStack,

    /// OS threads that drive the load on the fast path, each with its own
    /// single-threaded runtime and its share of the connections (default:
    /// half the cores, at least 1, at most --connections).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub client_threads: Option<u16>,
}

/// How money ops travel (`--client-stack`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ClientStack {
    #[default]
    Fast,
    Tonic,
}

impl std::fmt::Debug for TransportArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("TransportArgs")
            .field("tls_ca", &self.tls_ca)
            .field("tls_insecure", &self.tls_insecure)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("metadata", &self.metadata.len())
            .field("client_stack", &self.client_stack)
            .field("client_threads", &self.client_threads)
            .finish()
    }
}

/// The metadata added to every call; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Metadata(Arc<Vec<(AsciiMetadataKey, AsciiMetadataValue)>>);

impl Interceptor for Metadata {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        for (key, value) in self.0.iter() {
            request.metadata_mut().insert(key.clone(), value.clone());
        }
        Ok(request)
    }
}

/// A bank client that adds the run's metadata to every call.
pub type Bank = BankClient<InterceptedService<Channel, Metadata>>;

/// What [`install`] set up for the process.
struct Installed {
    metadata: Metadata,
    tls: Option<ClientTlsConfig>,
    /// `--tls-insecure`: connections are made by [`crate::insecure`].
    insecure: Option<tokio_rustls::TlsConnector>,
    stack: ClientStack,
    threads: Option<u16>,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Reads the flags once for the whole process (later calls keep the first).
pub fn install(args: &TransportArgs) -> Result<(), String> {
    if INSTALLED.get().is_some() {
        return Ok(());
    }
    let insecure = args
        .tls_insecure
        .then(crate::insecure::tls_connector)
        .transpose()?;
    if insecure.is_some() {
        tracing::warn!(
            "--tls-insecure: the server's certificate is NOT verified; anyone on the path can impersonate it"
        );
    }
    let installed = Installed {
        metadata: metadata(args)?,
        tls: tls(args)?,
        insecure,
        stack: args.client_stack,
        threads: args.client_threads,
    };
    let _ = INSTALLED.set(installed);
    Ok(())
}

/// A bank client over `channel` with the installed metadata.
pub fn bank(channel: Channel) -> Bank {
    let metadata = INSTALLED.get().map(|i| i.metadata.clone()).unwrap_or_default();
    BankClient::with_interceptor(channel, metadata)
}

/// A bank client over `channel` with the installed metadata but `token` as
/// its bearer token instead of `--token` (`None`: no `authorization` at all):
/// the conformance suite's second principal and its caller without a token.
pub fn bank_with_token(channel: Channel, token: Option<&str>) -> Result<Bank, String> {
    let installed = INSTALLED.get().map(|i| i.metadata.clone()).unwrap_or_default();
    let mut pairs: Vec<_> = installed
        .0
        .iter()
        .filter(|(key, _)| key.as_str() != "authorization")
        .cloned()
        .collect();
    if let Some(token) = token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| "a token is not a valid header value".to_owned())?;
        pairs.insert(0, (AsciiMetadataKey::from_static("authorization"), value));
    }
    Ok(BankClient::with_interceptor(channel, Metadata(Arc::new(pairs))))
}

/// The headers of the fast path's calls to `targets` (the deadline and the
/// installed metadata), or `None` when money ops go over tonic: with
/// `--client-stack tonic`, or when a target is not plaintext `http://`.
pub fn fast_path(targets: &[String], timeout: Duration) -> Option<crate::h2fast::CallHeaders> {
    let installed = INSTALLED.get();
    let stack = installed.map_or(ClientStack::Fast, |i| i.stack);
    if stack != ClientStack::Fast || !targets.iter().all(|t| t.starts_with("http://")) {
        return None;
    }
    let metadata = installed.map_or(&[][..], |i| i.metadata.0.as_slice());
    let metadata = metadata
        .iter()
        .filter_map(|(key, value)| {
            let key = HeaderName::from_bytes(key.as_str().as_bytes()).ok()?;
            Some((key, HeaderValue::from_bytes(value.as_encoded_bytes()).ok()?))
        })
        .collect();
    Some(crate::h2fast::CallHeaders {
        timeout: Some(timeout),
        metadata,
    })
}

/// `--client-threads`, if given.
pub fn client_threads() -> Option<usize> {
    INSTALLED.get().and_then(|i| i.threads).map(usize::from)
}

/// The endpoint of `target`. With `--tls-insecure` an `https://` target is
/// dialled as `http://`: [`connect`] then does the TLS itself.
pub fn endpoint(target: &str) -> Result<Endpoint, String> {
    let insecure = INSTALLED.get().is_some_and(|i| i.insecure.is_some());
    let uri = match target.strip_prefix("https://") {
        Some(rest) if insecure => format!("http://{rest}"),
        _ => target.to_owned(),
    };
    Endpoint::from_shared(uri).map_err(|e| format!("bad --target {target:?}: {e}"))
}

/// A connection to `endpoint`: tonic's own, or with `--tls-insecure` one
/// whose TLS does not verify the server.
pub async fn connect(endpoint: &Endpoint) -> Result<Channel, tonic::transport::Error> {
    match INSTALLED.get().and_then(|i| i.insecure.clone()) {
        Some(tls) => {
            let dial = tower::service_fn(move |uri| {
                let connecting = crate::insecure::connect(tls.clone(), uri);
                async move {
                    let io = connecting.await?;
                    crate::connections::opened();
                    Ok::<_, crate::insecure::BoxError>(io)
                }
            });
            endpoint.connect_with_connector(dial).await
        }
        None => endpoint.connect_with_connector(counted_tcp()).await,
    }
}

/// tonic's own TCP connector (TLS, if any, is added by tonic on top), each
/// connection counted in the report's `connections.opened`.
fn counted_tcp() -> impl tower::Service<
    tonic::transport::Uri,
    Response = hyper_util::rt::TokioIo<tokio::net::TcpStream>,
    Error = crate::insecure::BoxError,
    Future = impl Send,
> + Clone {
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    tower::service_fn(move |uri| {
        let mut http = http.clone();
        async move {
            let io = tower::Service::call(&mut http, uri).await?;
            crate::connections::opened();
            Ok(io)
        }
    })
}

/// `endpoint` with TLS when the target is `https://`.
pub fn secure(endpoint: Endpoint) -> Result<Endpoint, String> {
    if endpoint.uri().scheme_str() != Some("https") {
        return Ok(endpoint);
    }
    let tls = INSTALLED.get().and_then(|i| i.tls.clone());
    let tls = tls.unwrap_or_else(|| ClientTlsConfig::new().with_webpki_roots());
    endpoint.tls_config(tls).map_err(|e| format!("TLS: {e}"))
}

fn metadata(args: &TransportArgs) -> Result<Metadata, String> {
    if args.metadata.len() > MAX_METADATA {
        return Err(format!("at most {MAX_METADATA} --metadata pairs"));
    }
    let mut pairs = Vec::new();
    if let Some(token) = &args.token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| "--token: not a valid header value".to_owned())?;
        pairs.push((AsciiMetadataKey::from_static("authorization"), value));
    }
    for pair in &args.metadata {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("--metadata {pair:?}: expected KEY=VALUE"))?;
        let key = key
            .to_ascii_lowercase()
            .parse()
            .map_err(|_| format!("--metadata: bad key {key:?}"))?;
        let value = value
            .parse()
            .map_err(|_| format!("--metadata: bad value for {key}"))?;
        pairs.push((key, value));
    }
    Ok(Metadata(Arc::new(pairs)))
}

fn tls(args: &TransportArgs) -> Result<Option<ClientTlsConfig>, String> {
    let Some(path) = &args.tls_ca else {
        return Ok(None);
    };
    let shown = path.display();
    let len = std::fs::metadata(path)
        .map_err(|e| format!("--tls-ca {shown}: {e}"))?
        .len();
    if len > MAX_CA_BYTES {
        return Err(format!(
            "--tls-ca {shown}: {len} bytes; the limit is {MAX_CA_BYTES}"
        ));
    }
    let pem = std::fs::read(path).map_err(|e| format!("--tls-ca {shown}: {e}"))?;
    Ok(Some(
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_and_metadata_become_headers_and_junk_is_refused() {
        let args = TransportArgs {
            token: Some("t0k".into()),
            metadata: vec!["X-Tenant=lab".into(), "x-run=7".into()],
            ..TransportArgs::default()
        };
        let mut md = metadata(&args).unwrap();
        let request = md.call(Request::new(())).unwrap();
        assert_eq!(request.metadata().get("authorization").unwrap(), "Bearer t0k");
        assert_eq!(request.metadata().get("x-tenant").unwrap(), "lab");
        assert_eq!(request.metadata().get("x-run").unwrap(), "7");
        for bad in ["novalue", "bad key=1", "k=\n"] {
            let args = TransportArgs {
                metadata: vec![bad.into()],
                ..TransportArgs::default()
            };
            assert!(metadata(&args).is_err(), "{bad:?}");
        }
        assert!(!format!("{args:?}").contains("t0k"), "the token is never printed");
    }
}
