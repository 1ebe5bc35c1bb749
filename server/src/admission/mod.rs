//! Admission: who may connect (connection limits, the handshake guard, TLS),
//! who may call (tokens, owners, the drain on shutdown), and when an op may
//! run (the per-account gate, the fence for dropped calls, `Ops`: the async
//! path of every op up to the ledger backend).
//! May import: `backend`, `observe`; never `rpc`.

pub mod auth;
pub mod coalesce;
pub mod conn;
pub mod drain;
pub(crate) mod fence;
pub mod gate;
pub mod handshake;
pub mod ops;
pub mod tls;
