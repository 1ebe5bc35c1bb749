//! Logging setup shared by the binaries: `tracing` to stderr, filtered by
//! `RUST_LOG` (else the given default), as text (colours only on a terminal)
//! or as one JSON object per line (`--log-format json`). Per-call access
//! lines are at `debug` under the target `bank_server::access`.

use std::io::IsTerminal;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global text subscriber; call once, first thing in `main`.
pub fn init(default_filter: &str) {
    init_with(default_filter, LogFormat::Text);
}

/// Installs the global subscriber in `format`; call once, first thing in `main`.
pub fn init_with(default_filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_current_span(false).init(),
    }
}
