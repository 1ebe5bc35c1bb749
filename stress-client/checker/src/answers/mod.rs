//! Each answer against the contract, one op or call at a time, before any
//! order is built: outcomes, request ids and flags (`protocol`), retries
//! under load (`replays`), and the calls that break the contract on purpose
//! (`invalid`).

pub(crate) mod invalid;
pub(crate) mod protocol;
pub(crate) mod replays;
