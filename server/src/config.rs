//! Server-wide configuration: the ledger's knobs plus the transport limits
//! (message size, streams per connection, buffers) and the shutdown grace.

use std::time::Duration;

use crate::ledger::LedgerConfig;

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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            ledger: LedgerConfig::default(),
            max_message_bytes: 64 * 1024,
            max_concurrent_streams_per_connection: 1024,
            stream_response_buffer: 64,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}
