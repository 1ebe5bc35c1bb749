//! The ledger's storage boundary: one narrow sync trait through which every
//! change that must survive a crash passes (an account opened, an op's
//! effect with its sequence number and stored result, a fenced request id),
//! plus what a snapshot holds. The monitor decides an op under the account's
//! lock and hands its records to [`Storage::append`], which returns a
//! [`Ticket`] of the flush that will make them durable; the ledger applies
//! the op to memory at once but keeps the state before it, answers only
//! once the ticket says synced, shows reads only synced state, and rolls the
//! op back if the ticket says failed. A backend that commits synchronously
//! (the default `append`) returns no ticket: then the op is durable when
//! `append` returns.
//!
//! Two backends: [`MemoryStorage`] (the default: persists nothing) and
//! [`Journal`] (`--data-dir`: an fsync'ed append-only journal with group
//! commit and snapshots). A third (say PostgreSQL) implements the same trait.

mod codec;
mod dir;
mod ident;
mod journal;
mod marker;
pub mod planted;
mod scan;
mod ticket;

use std::fmt;
use std::sync::Arc;

pub use codec::Record;
pub use dir::{DataDir, Recovered};
pub use journal::{check_rollover_bytes, Journal, REPAIR_INTERVAL, ROLLOVER_MIN_BYTES, SNAPSHOT_AFTER_BYTES};
pub use marker::CLEAN_FILE;
pub use ticket::{Flushed, Ticket};

use super::error::{LedgerError, LedgerResult};
use super::op::{Fingerprint, OpResult, Outcome};

/// Why storage refused a write. Nothing of the refused records may be
/// assumed durable, and the ledger did not apply them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageError(pub String);

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the ledger's changes go before they are acknowledged.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Makes `records` durable, in order, and returns once they are (or
    /// fails: then none of them counts, and writes fail until the storage
    /// works again). Blocks: called on the blocking pool, under account locks.
    fn commit(&self, records: &[Record]) -> Result<(), StorageError>;

    /// Queues `records` for the next flush and returns its ticket without
    /// waiting, or `None` when they are durable already (a synchronous
    /// backend). Refused when a ticket in `after` (the flushes the records'
    /// state builds on) failed: records built on lost state are never written.
    fn append(&self, records: &[Record], after: &[&Ticket]) -> Result<Option<Ticket>, StorageError> {
        if let Some(Err(e)) = after.iter().find_map(|t| t.status().filter(|r| r.is_err())) {
            return Err(e.clone());
        }
        self.commit(records).map(|()| None)
    }

    /// Whether a commit waits for stable storage (false: memory only).
    fn is_durable(&self) -> bool;

    /// Whether the storage wants a snapshot now to bound its disk use.
    fn wants_snapshot(&self) -> bool {
        false
    }

    /// Replaces everything stored by `snapshot` (the whole state, taken with
    /// every account locked, so no commit runs meanwhile).
    fn snapshot(&self, _snapshot: &[Record]) -> Result<(), StorageError> {
        Ok(())
    }
}

/// The default: nothing is persisted; a restart starts empty.
#[derive(Debug, Default)]
pub struct MemoryStorage;

impl Storage for MemoryStorage {
    fn commit(&self, _records: &[Record]) -> Result<(), StorageError> {
        Ok(())
    }

    fn is_durable(&self) -> bool {
        false
    }
}

/// The stored result of an op, as the request log keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub outcome: Outcome,
    pub balance: u64,
    pub sequence: u64,
    pub to_balance: u64,
    pub to_sequence: u64,
}

/// A shared handle on a storage backend.
pub type SharedStorage = Arc<dyn Storage>;

/// The handle the ledger's configuration carries: memory by default.
#[derive(Debug, Clone)]
pub struct StorageHandle(pub SharedStorage);

impl Default for StorageHandle {
    fn default() -> Self {
        StorageHandle(Arc::new(MemoryStorage))
    }
}

impl StorageHandle {
    /// Commits `records`; a refusal is the domain's `Unavailable`.
    pub fn persist(&self, records: &[Record]) -> LedgerResult<()> {
        self.0.commit(records).map_err(|e| LedgerError::Unavailable(e.0))
    }

    /// Queues `records` (see [`Storage::append`]); a refusal is the domain's `Unavailable`.
    pub fn append(&self, records: &[Record], after: &[&Ticket]) -> LedgerResult<Option<Ticket>> {
        self.0
            .append(records, after)
            .map_err(|e| LedgerError::Unavailable(e.0))
    }

    /// Queues the record of an op on `account` that ended in `result`. In
    /// memory nothing is built: the default path pays no allocation for it.
    pub fn append_op(
        &self,
        account: &Arc<str>,
        fp: &Fingerprint,
        result: &OpResult,
        after: &[&Ticket],
    ) -> LedgerResult<Option<Ticket>> {
        if !self.is_durable() {
            return Ok(None);
        }
        self.append(&[op_record(account, fp, result)], after)
    }

    /// Whether commits wait for stable storage.
    pub fn is_durable(&self) -> bool {
        self.0.is_durable()
    }
}

/// The record of an op on `account` that ended in `result`.
pub fn op_record(account: &Arc<str>, fp: &Fingerprint, result: &OpResult) -> Record {
    Record::Op {
        account: Arc::clone(account),
        request_id: Arc::from(result.request_id.as_str()),
        kind: fp.kind.clone(),
        amount: fp.amount,
        result: Stored {
            outcome: result.outcome,
            balance: result.balance,
            sequence: result.sequence,
            to_balance: result.to_balance,
            to_sequence: result.to_sequence,
        },
    }
}
