//! bank-server: a gRPC bank whose accounts are monitors. One folder per layer:
//! `rpc` (the gRPC surface) → `admission` (connections, tokens, the gate,
//! `Ops`) → `backend` (the ledgers), with `observe` beside them. The ledger (sync,
//! no gRPC types) holds the accounts; the service validates, admits and calls
//! it on the blocking pool; `run` wires the transport, health and reflection.

pub mod admission;
pub mod backend;
pub mod cli;
pub mod config;
pub mod observe;
pub mod rpc;
pub mod signal;
mod startup;

pub use config::ServerConfig;
pub use rpc::router::router;
pub use startup::{run, serve, BoxError, Listeners};
