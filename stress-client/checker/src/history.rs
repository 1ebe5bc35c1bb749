//! The recorded history a run hands to the checker: compact per-op records
//! (48 bytes each, transfers' second leg in a side table) plus each account's
//! initial and final state. Times are nanoseconds on one monotonic clock.

use serde::Serialize;

/// Index of an account in [`History::accounts`].
pub type AccountIdx = u32;

/// What an op asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[repr(u8)]
pub enum Kind {
    Deposit,
    Withdraw,
    /// A transfer out of `Op::account`; its target leg is in [`History::transfers`].
    Transfer,
}

/// What the client learned about an op's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[repr(u8)]
pub enum Outcome {
    Approved,
    InsufficientFunds,
    /// Known never to take effect (the server said so, e.g. after a fence).
    NotApplied,
    /// Nobody knows: no reply and `GetOperation` could not settle it. The
    /// checker treats it like Jepsen's `:info`: it may or may not have happened.
    /// Record it with `balance`, `sequence` (and the leg's `to_balance`,
    /// `to_sequence`) set to 0 and `recv_ns` set to `u64::MAX`.
    Unknown,
}

impl Outcome {
    /// True for the outcomes that took a sequence number on every account the
    /// op touched (approved or denied); only these carry balances to check.
    pub fn took_sequence(self) -> bool {
        matches!(self, Outcome::Approved | Outcome::InsufficientFunds)
    }
}

/// One recorded op. `balance`/`sequence` are meaningful only when the outcome
/// is `Approved` or `InsufficientFunds` (the op took a sequence number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    /// The account the op ran on (a transfer's source).
    pub account: AccountIdx,
    pub kind: Kind,
    pub outcome: Outcome,
    /// True when the outcome came from `GetOperation` after the call failed.
    pub resolved: bool,
    /// Amount in minor units.
    pub amount: u64,
    /// When the op was sent and when its reply arrived (`u64::MAX`: never).
    /// For an op settled by `GetOperation`, `recv_ns` is when that lookup's
    /// reply arrived: the op surely finished by then, which keeps the
    /// real-time check sound. An op retried under the same request id is one
    /// record, sent when its first attempt was.
    pub send_ns: u64,
    pub recv_ns: u64,
    /// Reported balance right after the op, and the sequence number it took.
    pub balance: u64,
    pub sequence: u64,
}

// The driver keeps millions of these in memory; growing past 48 bytes would
// break the checker's memory budget, so it fails the build instead.
const _: () = assert!(std::mem::size_of::<Op>() <= 48);

/// The target leg of a transfer, kept out of [`Op`] so ops stay small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferLeg {
    /// Index into [`History::ops`] of the transfer.
    pub op: u32,
    pub to_account: AccountIdx,
    pub to_balance: u64,
    pub to_sequence: u64,
}

/// An account's state before the run and as read after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    pub account_id: String,
    pub initial_balance: u64,
    /// From `GetBalance` after the run; `None` if it could not be read.
    pub final_balance: Option<u64>,
    pub final_sequence: Option<u64>,
}

/// Everything the checker needs.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub accounts: Vec<AccountState>,
    pub ops: Vec<Op>,
    /// Sorted by `op`; one entry per `Kind::Transfer` op.
    pub transfers: Vec<TransferLeg>,
}
