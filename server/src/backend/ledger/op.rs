//! Plain values that go in and out of the ledger: the operations callers ask
//! for, their validation, and the result each one leaves behind.

use std::sync::Arc;

use super::error::{LedgerError, LedgerResult};

/// The longest account id accepted, in bytes.
pub const ACCOUNT_ID_MAX_BYTES: usize = 128;
/// The longest request id accepted, in bytes.
pub const REQUEST_ID_MAX_BYTES: usize = 64;

/// What happened to an operation (mirrors `bank.v1.Outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Approved,
    InsufficientFunds,
    NotApplied,
}

/// The result of a deposit, withdrawal or transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpResult {
    pub request_id: String,
    pub outcome: Outcome,
    /// Balance of the (source) account right after the op.
    pub balance: u64,
    /// Sequence number the op took on the (source) account; 0 if not applied.
    pub sequence: u64,
    /// True when a stored result is returned again.
    pub replayed: bool,
    /// For transfers: the target account's balance and sequence number.
    pub to_balance: u64,
    pub to_sequence: u64,
}

impl OpResult {
    /// The result of an op that never took effect.
    pub fn not_applied(request_id: &str) -> Self {
        OpResult {
            request_id: request_id.to_owned(),
            outcome: Outcome::NotApplied,
            balance: 0,
            sequence: 0,
            replayed: false,
            to_balance: 0,
            to_sequence: 0,
        }
    }
}

/// What an attempt to run an op came to. A context that may not block (an
/// async worker) gets `WouldBlock` when the op would have to wait for a lock,
/// sleep or wait for funds: nothing changed, and the caller runs it again
/// where it may block. A plain result of the attempt, not a domain error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt<T> {
    /// The op ran (or was answered from the request log).
    Done(T),
    /// The op would have blocked; nothing changed.
    WouldBlock,
}

/// An account's state read under its lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub account_id: String,
    pub balance: u64,
    pub sequence: u64,
}

/// The kind of a money-moving op; with the amount it is the fingerprint that
/// tells a replay (same parameters) from a conflicting reuse of a request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    Deposit,
    Withdraw,
    TransferTo(Arc<str>),
}

/// The parameters an idempotent op is remembered by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub kind: OpKind,
    pub amount: u64,
}

impl Fingerprint {
    /// The fingerprint of an op of `kind` moving `amount`.
    pub fn new(kind: OpKind, amount: u64) -> Self {
        Fingerprint { kind, amount }
    }
}

/// A deposit request.
#[derive(Debug, Clone)]
pub struct Deposit {
    pub account_id: String,
    pub amount: u64,
    pub request_id: String,
}

/// A withdrawal request.
#[derive(Debug, Clone)]
pub struct Withdrawal {
    pub account_id: String,
    pub amount: u64,
    pub request_id: String,
    pub wait_for_funds: bool,
}

/// A transfer request.
#[derive(Debug, Clone)]
pub struct Transfer {
    pub from_account_id: String,
    pub to_account_id: String,
    pub amount: u64,
    pub request_id: String,
}

/// Checks an account id: non-empty, at most [`ACCOUNT_ID_MAX_BYTES`], no
/// control character.
pub fn validate_account_id(id: &str) -> LedgerResult<()> {
    if id.is_empty() {
        return Err(LedgerError::InvalidArgument(
            "account_id must not be empty".into(),
        ));
    }
    if id.len() > ACCOUNT_ID_MAX_BYTES {
        return Err(LedgerError::InvalidArgument(format!(
            "account_id is {} bytes; the limit is {ACCOUNT_ID_MAX_BYTES}",
            id.len()
        )));
    }
    no_control_chars("account_id", id)
}

/// Checks a request id: empty (not idempotent) or at most
/// [`REQUEST_ID_MAX_BYTES`], no control character.
pub fn validate_request_id(id: &str) -> LedgerResult<()> {
    if id.len() > REQUEST_ID_MAX_BYTES {
        return Err(LedgerError::InvalidArgument(format!(
            "request_id is {} bytes; the limit is {REQUEST_ID_MAX_BYTES}",
            id.len()
        )));
    }
    no_control_chars("request_id", id)
}

/// Refuses a control character (Unicode category Cc: U+0000–U+001F,
/// U+007F–U+009F) in an id: NUL cannot be stored by every backend, and the
/// others hide in logs. Every backend answers INVALID_ARGUMENT alike.
fn no_control_chars(field: &str, id: &str) -> LedgerResult<()> {
    // Ids are nearly always printable ASCII: checked a byte at a time, that
    // costs a fraction of decoding every char (every op checks two ids).
    if id.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Ok(());
    }
    match id.char_indices().find(|(_, c)| c.is_control()) {
        None => Ok(()),
        Some((at, c)) => Err(LedgerError::InvalidArgument(format!(
            "{field} holds the control character U+{:04X} at byte {at}; ids may not hold U+0000-U+001F or U+007F-U+009F",
            u32::from(c)
        ))),
    }
}

fn validate_amount(amount: u64) -> LedgerResult<()> {
    if amount == 0 {
        return Err(LedgerError::InvalidArgument(
            "amount must be greater than 0".into(),
        ));
    }
    Ok(())
}

impl Deposit {
    /// Checks every field; a request that passes can only fail on state.
    pub fn validate(&self) -> LedgerResult<()> {
        validate_account_id(&self.account_id)?;
        validate_amount(self.amount)?;
        validate_request_id(&self.request_id)
    }
}

impl Withdrawal {
    /// Checks every field; a request that passes can only fail on state.
    pub fn validate(&self) -> LedgerResult<()> {
        validate_account_id(&self.account_id)?;
        validate_amount(self.amount)?;
        validate_request_id(&self.request_id)
    }
}

impl Transfer {
    /// Checks every field; a request that passes can only fail on state.
    pub fn validate(&self) -> LedgerResult<()> {
        validate_account_id(&self.from_account_id)?;
        validate_account_id(&self.to_account_id)?;
        validate_amount(self.amount)?;
        validate_request_id(&self.request_id)?;
        if self.from_account_id == self.to_account_id {
            return Err(LedgerError::InvalidArgument(
                "a transfer needs two different accounts".into(),
            ));
        }
        Ok(())
    }
}
