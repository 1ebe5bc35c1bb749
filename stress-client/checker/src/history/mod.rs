//! The run as recorded, and how to read it: the records a client hands to
//! the checker (`records`), one account's view of one op decoded from a
//! 32-bit entry number (`leg`), and synthetic histories of a correct server
//! for the bench and the tests (`synth`).

pub(crate) mod leg;
mod records;
pub mod synth;

pub use records::{
    AccountIdx, AccountState, Duplicate, History, Invalid, InvalidCall, Kind, Op, Outcome, Read, TransferLeg,
};
