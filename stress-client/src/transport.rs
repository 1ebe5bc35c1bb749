//! How the stress-client reaches a real server: TLS for `https://` targets
//! ([`crate::tls`]: `--tls-ca`, else the webpki roots; `--tls-cert` and
//! `--tls-key` for mutual TLS), made by [`crate::h2fast::dial`] for both
//! client stacks (tonic gets the open connection), a bearer token (`--token`, sent as
//! `authorization: Bearer TOKEN`) and extra metadata (`--metadata KEY=VALUE`)
//! on every call, added by one client interceptor ([`Bank`]). Installed once
//! per process from the flags ([`install`]); the embedded demo sets none.
//! `--tls-insecure` skips certificate verification ([`crate::insecure`]).
//! `--client-stack` picks how money ops travel: the fast path
//! ([`crate::h2fast`], the default) or tonic. A connection that fails says
//! why, with every cause ([`causes`]).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bank::v1::bank_client::BankClient;
use clap::{Args, ValueEnum};
use http::{HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::tls::Tls;

/// The most `--metadata` pairs accepted.
const MAX_METADATA: usize = 64;

/// The transport flags of a run.
#[derive(Clone, Default, Args)]
pub struct TransportArgs {
    /// CA certificate(s) (PEM) that an `https://` target's certificate must
    /// chain to, or the server's own certificate (pinned: accepted as it is,
    /// even self-signed CA:TRUE; its name is still checked); without it the
    /// webpki roots are trusted.
    #[arg(long, value_name = "PATH")]
    pub tls_ca: Option<PathBuf>,

    /// Client certificate chain (PEM) for mutual TLS, with --tls-key.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The client certificate's private key (PEM), with --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

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
    /// client CPU per op; http:// and https://) or `tonic` (tonic's client stack, as every other call).
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

impl TransportArgs {
    /// The four TLS flags, as `crate::tls` takes them.
    pub fn tls_flags(&self) -> crate::tls::TlsFlags<'_> {
        crate::tls::TlsFlags {
            tls_ca: self.tls_ca.as_deref(),
            tls_cert: self.tls_cert.as_deref(),
            tls_key: self.tls_key.as_deref(),
            tls_insecure: self.tls_insecure,
        }
    }
}

impl std::fmt::Debug for TransportArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("TransportArgs")
            .field("tls_ca", &self.tls_ca)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
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
    /// The TLS of `https://` targets.
    tls: Tls,
    stack: ClientStack,
    threads: Option<u16>,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Reads the flags once for the whole process (later calls keep the first).
pub fn install(args: &TransportArgs) -> Result<(), String> {
    if INSTALLED.get().is_some() {
        return Ok(());
    }
    let tls = crate::tls::from_args(args.tls_flags())?;
    if tls.insecure {
        tracing::warn!(
            "--tls-insecure: the server's certificate is NOT verified; anyone on the path can impersonate it"
        );
    }
    let installed = Installed {
        metadata: metadata(args)?,
        tls,
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

/// The headers of the fast path's calls to `targets` (the deadline, the
/// installed metadata and TLS), or `None` when money ops go over tonic:
/// with `--client-stack tonic`, or for a target neither `http://` nor
/// `https://`.
pub fn fast_path(targets: &[String], timeout: Duration) -> Option<crate::h2fast::CallHeaders> {
    let installed = INSTALLED.get();
    let stack = installed.map_or(ClientStack::Fast, |i| i.stack);
    let known = |t: &String| t.starts_with("http://") || t.starts_with("https://");
    if stack != ClientStack::Fast || !targets.iter().all(known) {
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
        tls: installed.map(|i| i.tls.clone()),
    })
}

/// `--client-threads`, if given.
pub fn client_threads() -> Option<usize> {
    INSTALLED.get().and_then(|i| i.threads).map(usize::from)
}

/// The endpoint of `target`. An `https://` target is dialled as `http://`
/// ([`connect`] does the TLS itself, and tonic would refuse an `https://`
/// dial it does not make), but its requests keep the target as their origin:
/// over TLS they carry `:scheme https`, as the fast path's do.
pub fn endpoint(target: &str) -> Result<Endpoint, String> {
    let bad = |e: &dyn std::fmt::Display| format!("bad --target {target:?}: {e}");
    let Some(rest) = target.strip_prefix("https://") else {
        return Endpoint::from_shared(target.to_owned()).map_err(|e| bad(&e));
    };
    let origin: http::Uri = target.parse().map_err(|e| bad(&e))?;
    let endpoint = Endpoint::from_shared(format!("http://{rest}")).map_err(|e| bad(&e))?;
    Ok(endpoint.origin(origin))
}

/// A tonic connection to `endpoint` (made by [`endpoint`] from `target`),
/// dialled by [`crate::h2fast::dial`]: with TLS when `target` is `https://`.
pub async fn connect(endpoint: &Endpoint, target: &str) -> Result<Channel, tonic::transport::Error> {
    let tls = match target.starts_with("https://") {
        true => INSTALLED.get().map(|i| i.tls.clone()),
        false => None,
    };
    let dial = tower::service_fn(move |uri: http::Uri| {
        let tls = tls.clone();
        async move {
            let authority = uri.authority().map(|a| a.as_str().to_owned()).unwrap_or_default();
            let io = crate::h2fast::dial::dial(&authority, tls.as_ref()).await?;
            Ok::<_, crate::h2fast::dial::DialError>(TokioIo::new(io))
        }
    });
    endpoint.connect_with_connector(dial).await
}

/// Proves `target` reachable before tonic connects to it: one connection
/// of the fast path's ([`crate::h2fast::connect`]: TCP, TLS, the HTTP/2
/// handshake and a PING answered), whose failure says exactly why (a TLS
/// alert such as "client certificate required" reaches tonic's first
/// call only as "connection closed").
pub async fn probe(target: &str) -> Result<(), String> {
    if !(target.starts_with("http://") || target.starts_with("https://")) {
        return Ok(()); // tonic says what is wrong with it
    }
    let headers = crate::h2fast::CallHeaders {
        tls: INSTALLED.get().map(|i| i.tls.clone()),
        ..Default::default()
    };
    crate::h2fast::connect(target, &headers).await.map(drop)
}

/// A status's message and the causes beneath it (a transport failure's
/// status says only "transport error" by itself).
pub fn status_text(status: &Status) -> String {
    let mut text = status.message().to_owned();
    if let Some(source) = std::error::Error::source(status) {
        for line in causes(source).split(": ") {
            if !text.contains(line) {
                text.push_str(": ");
                text.push_str(line);
            }
        }
    }
    text
}

/// `e` and its causes, each once: tonic's "transport error" says nothing
/// by itself.
pub fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
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
