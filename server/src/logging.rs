//! Logging setup shared by the binaries: `tracing` to stderr, filtered by
//! `RUST_LOG` (else the given default), with colours only on a terminal.

use std::io::IsTerminal;

/// Installs the global subscriber; call once, first thing in `main`.
pub fn init(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
