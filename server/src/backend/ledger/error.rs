//! The one domain error of the ledger. The gRPC layer maps it to a status in
//! exactly one place (`crate::rpc::status`); nothing else decides wire codes.

use thiserror::Error;

/// Everything that can make a ledger call fail. A failed call changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LedgerError {
    /// The request is malformed (amount 0, bad id, transfer to itself).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No account has this id.
    #[error("account {0:?} not found")]
    AccountNotFound(String),
    /// `OpenAccount` of an id that already exists.
    #[error("account {0:?} already exists")]
    AccountExists(String),
    /// A request id was reused with other parameters.
    #[error("request id {request_id:?} was already used on account {account_id:?} with other parameters")]
    RequestIdConflict { account_id: String, request_id: String },
    /// The credit would push a balance past `u64::MAX`.
    #[error("the deposit of {amount} would overflow the balance of account {account_id:?}")]
    BalanceOverflow { account_id: String, amount: u64 },
    /// An admission limit is full; the call may succeed later.
    #[error("limit reached: {0}")]
    LimitReached(String),
    /// An operation with this request id is still waiting for funds.
    #[error("request id {0:?} is still in progress; ask again later")]
    InProgress(String),
    /// The id is unknown and the account has forgotten older ids, so whether
    /// it was ever applied cannot be told. It is fenced from now on.
    #[error("request id {request_id:?} is unknown and account {account_id:?} has forgotten {forgotten} older ids: the outcome cannot be determined (the id is now fenced)")]
    OutcomeUnknown {
        account_id: String,
        request_id: String,
        forgotten: u64,
    },
    /// A bug: a blocking task failed to finish (it panicked or was cancelled).
    #[error("internal error: {0}")]
    Internal(String),
    /// Storage refused the write (full disk, read-only dir, failed sync):
    /// nothing of the op was applied; writes are refused until it works again.
    #[error("{0}")]
    Unavailable(String),
    /// The server is shutting down and takes no new work.
    #[error("the server is shutting down")]
    ShuttingDown,
}

/// Shorthand used across the ledger.
pub type LedgerResult<T> = Result<T, LedgerError>;
