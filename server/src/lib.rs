//! bank-server: a gRPC bank whose accounts are monitors. The ledger (sync,
//! no gRPC types) holds the accounts; the service validates, admits and calls
//! it on the blocking pool; `run` wires the transport, health and reflection.

pub mod auth;
pub mod call;
pub mod cli;
pub mod config;
pub mod conn;
mod convert;
pub mod drain;
pub mod durable;
mod fence;
pub mod gate;
pub mod handshake;
pub mod ledger;
pub mod logging;
pub mod metrics;
pub mod metrics_http;
pub mod ops;
mod ops_pg;
mod parked;
pub mod pg;
pub mod router;
pub mod service;
pub mod signal;
mod startup;
mod status;
mod stream;
pub mod telemetry;
pub mod tls;
pub mod zoo;

pub use config::ServerConfig;
pub use router::router;
pub use startup::{run, serve, BoxError, Listeners};
