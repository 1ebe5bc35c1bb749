//! Layer 3, beside `order`: each answer against the contract, one op or call
//! at a time, before any order is built. Outcomes, request ids and flags
//! (`protocol`), retries under load (`replays`), and the calls that break
//! the contract on purpose (`invalid`).
//!
//! May import: `history`, `report`.

pub(crate) mod invalid;
pub(crate) mod protocol;
pub(crate) mod replays;
