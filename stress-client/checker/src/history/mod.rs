//! Layer 1, the ground: the run as recorded, and how to read it. The records
//! a client hands to the checker (`records`), one account's view of one op
//! decoded from a 32-bit entry number and packed with its sequence number
//! into the index's 8-byte key (`leg`), and synthetic histories of a correct
//! server for the bench and the tests (`synth`).
//!
//! May import: nothing of the crate. Every other layer reads the history.

pub(crate) mod leg;
mod records;
pub mod synth;

pub use records::{
    AccountIdx, AccountState, Duplicate, History, Invalid, InvalidCall, Kind, Op, Outcome, Processes, Read,
    TransferLeg,
};
