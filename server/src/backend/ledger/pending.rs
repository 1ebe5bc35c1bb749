//! An answer the ledger has decided but may not give yet: the op is applied
//! to memory and its record is queued for the journal's next flush, so the
//! answer waits for that flush's [`Ticket`]. Waiting happens with no account
//! lock held: a blocking caller waits on the ticket, an async one awaits it,
//! so many accounts' ops share one sync. If the flush fails the answer is
//! `Unavailable` (and the account rolls the op back; see `unsynced`).

use super::error::{LedgerError, LedgerResult};
use super::storage::Ticket;

/// A decided answer and the flush it waits for (none: it may go now).
#[derive(Debug)]
#[must_use = "an answer must wait for its flush before it is given"]
pub struct Pending<T> {
    value: T,
    ticket: Option<Ticket>,
}

impl<T> Pending<T> {
    /// An answer that may be given now.
    pub fn ready(value: T) -> Self {
        Pending { value, ticket: None }
    }

    /// An answer to give once `ticket`'s flush is synced.
    pub fn after(value: T, ticket: Option<Ticket>) -> Self {
        Pending { value, ticket }
    }

    /// Whether it must still wait for a flush.
    pub fn is_waiting(&self) -> bool {
        self.ticket.as_ref().is_some_and(|t| t.status().is_none())
    }

    /// The answer, waiting for its flush on this (blocking) thread.
    pub fn wait(self) -> LedgerResult<T> {
        match &self.ticket {
            None => Ok(self.value),
            Some(ticket) => settle(ticket.wait(), self.value),
        }
    }

    /// The answer, awaiting its flush without blocking a thread.
    pub async fn settled(self) -> LedgerResult<T> {
        match &self.ticket {
            None => Ok(self.value),
            Some(ticket) => settle(ticket.flushed().await, self.value),
        }
    }
}

fn settle<T>(flushed: super::storage::Flushed, value: T) -> LedgerResult<T> {
    flushed.map(|()| value).map_err(|e| LedgerError::Unavailable(e.0))
}
