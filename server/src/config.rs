//! Server-wide configuration: the ledger's knobs plus the transport limits
//! (message size, streams per connection, buffers, connections, keepalive),
//! TLS and tokens, and the shutdown grace.

use std::path::PathBuf;
use std::time::Duration;

use crate::backend::ledger::LedgerConfig;
use crate::backend::pg::DbSettings;
use crate::admission::tls::TlsFiles;

/// Where the binary listens unless told otherwise: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// `--max-connections-per-ip` unless told otherwise (or `--max-connections`, if smaller).
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;

/// Everything `run` needs besides the listener and the shutdown signal.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The ledger's behaviour and limits.
    pub ledger: LedgerConfig,
    /// Largest gRPC message accepted or sent, in bytes.
    pub max_message_bytes: usize,
    /// HTTP/2 streams one connection may have open at once.
    pub max_concurrent_streams_per_connection: u32,
    /// Answers a `WithdrawStream` buffers before it stops reading requests.
    pub stream_response_buffer: usize,
    /// How long in-flight calls get to finish after SIGINT/SIGTERM.
    pub shutdown_grace: Duration,
    /// Threads in tokio's blocking pool (the binary builds its runtime with it).
    pub max_blocking_threads: usize,
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Connections served at once from one IP address; the next is closed at once.
    pub max_connections_per_ip: usize,
    /// How long a new connection may take to finish TLS (when on) and send the
    /// HTTP/2 preface and first SETTINGS frame before it is closed.
    pub handshake_timeout: Duration,
    /// How often an idle HTTP/2 connection is pinged.
    pub http2_keepalive_interval: Duration,
    /// How long a ping may go unanswered before the connection is closed.
    pub http2_keepalive_timeout: Duration,
    /// TLS on the gRPC port (`--tls-cert`, `--tls-key`, `--tls-client-ca`).
    pub tls: Option<TlsFiles>,
    /// The bearer token file (`--auth-tokens`).
    pub auth_tokens: Option<PathBuf>,
    /// Where the ledger is kept durably (`--data-dir`); memory when `None`.
    pub data_dir: Option<PathBuf>,
    /// The shared ledger in PostgreSQL (`--database-url`), if any.
    pub database: Option<DbSettings>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            ledger: LedgerConfig::default(),
            max_message_bytes: 64 * 1024,
            max_concurrent_streams_per_connection: 1024,
            stream_response_buffer: 64,
            shutdown_grace: Duration::from_secs(10),
            max_blocking_threads: 512,
            max_connections: 10_000,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            handshake_timeout: Duration::from_secs(10),
            http2_keepalive_interval: Duration::from_secs(30),
            http2_keepalive_timeout: Duration::from_secs(10),
            tls: None,
            auth_tokens: None,
            data_dir: None,
            database: None,
        }
    }
}
