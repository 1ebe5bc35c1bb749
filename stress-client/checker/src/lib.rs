//! bank-checker: decides whether a recorded history of `bank.v1` operations
//! could have come from a correct server (one monitor per account). Pure and
//! synchronous, so it is tested on hand-built histories and reused anywhere.

pub mod history;

pub use history::{AccountIdx, AccountState, History, Kind, Op, Outcome, TransferLeg};
