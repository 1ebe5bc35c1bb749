//! The ledger backends behind one interface (`api::Backend`): the in-memory
//! monitors (`ledger`, with the journal of `--data-dir` in
//! `ledger::storage`; `memory` and `parked` make it a backend), PostgreSQL
//! (`pg`), what a backend may run its ops on (`runner`), and the choice
//! between them at startup (`durable`).
//! May import: `observe`; nothing of `admission`, `rpc` or the transport.

pub mod api;
pub mod durable;
pub mod ledger;
pub(crate) mod memory;
pub(crate) mod parked;
pub mod pg;
pub mod runner;
