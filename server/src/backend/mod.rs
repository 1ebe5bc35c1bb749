//! The ledger backends: the in-memory monitors (`ledger`, with the journal of
//! `--data-dir` in `ledger::storage`), PostgreSQL (`pg`), and the choice
//! between them at startup (`durable`).
//! May import: `observe`; nothing of `rpc` or the transport.

pub mod durable;
pub mod ledger;
pub(crate) mod ops_pg;
pub(crate) mod parked;
pub mod pg;
