//! The RPC surface: the `bank.v1` service and its stream, the wire ⇄ domain
//! conversions, the one mapping of domain errors to gRPC statuses, what the
//! server knows of one call, and the wiring of all services into a router.
//! May import: `admission` (ops, tokens, drain), `observe`, and the backend's
//! plain types (requests, answers, errors); never a backend's internals.

pub mod call;
pub(crate) mod convert;
pub(crate) mod owner;
pub mod router;
pub mod service;
pub(crate) mod status;
pub(crate) mod stream;
pub mod zoo;
