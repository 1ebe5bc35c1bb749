//! What an account applied to memory before its records were synced, kept
//! so that memory can go back to the last synced state. Each entry holds
//! the balance and sequence number from before a change, the request-log
//! changes it made, and the ticket of the flush that makes it durable.
//!
//! Settled every time the account's lock is taken: entries whose flush is
//! synced are dropped; from the first entry whose flush failed, every entry
//! is rolled back, newest first (the journal fails every batch appended
//! before a failure, and refuses appends built on a failed one, so all the
//! entries after a failed one failed too). Reads show the synced state:
//! the "before" of the oldest entry still waiting.

use std::collections::VecDeque;

use super::account::State;
use super::request_log::LogUndo;
use super::storage::Ticket;

/// One unsynced change of an account (see the module doc).
#[derive(Debug)]
pub(super) struct Undo {
    ticket: Ticket,
    balance: u64,
    sequence: u64,
    log: Vec<LogUndo>,
}

/// The account's unsynced changes, oldest first.
#[derive(Debug, Default)]
pub(super) struct Unsynced(VecDeque<Undo>);

impl State {
    /// Drops synced entries and rolls back failed ones (see the module doc).
    pub(super) fn settle_unsynced(&mut self) {
        let queue = &mut self.unsynced.0;
        while queue
            .front()
            .is_some_and(|u| matches!(u.ticket.status(), Some(Ok(()))))
        {
            queue.pop_front();
        }
        let Some(first_failed) = queue.iter().position(|u| u.ticket.failed()) else {
            return;
        };
        while self.unsynced.0.len() > first_failed {
            let Some(undo) = self.unsynced.0.pop_back() else {
                break;
            };
            self.balance = undo.balance;
            self.sequence = undo.sequence;
            undo.log.into_iter().rev().for_each(|l| self.log.undo(l));
        }
        // A rolled-back debit may have given money back to those waiting.
        self.wake_waiters();
    }

    /// Waits (lock held) until every unsynced change is synced or rolled
    /// back; then memory holds synced state only. Flushes complete in
    /// order, so waiting for the newest one waits for them all.
    pub(super) fn wait_unsynced(&mut self) {
        if let Some(ticket) = self.last_ticket().cloned() {
            let _ = ticket.wait();
        }
        self.settle_unsynced();
        debug_assert!(self.unsynced.0.is_empty());
    }

    /// Remembers a change applied before `ticket`'s flush, made from
    /// `before` = (balance, sequence); nothing when already durable.
    /// (`log` is collected only when kept: in memory, with no ticket, an op
    /// allocates nothing here.)
    pub(super) fn push_unsynced(
        &mut self,
        ticket: Option<Ticket>,
        before: (u64, u64),
        log: impl IntoIterator<Item = LogUndo>,
    ) {
        if let Some(ticket) = ticket {
            let (balance, sequence) = before;
            self.unsynced.0.push_back(Undo {
                ticket,
                balance,
                sequence,
                log: log.into_iter().collect(),
            });
        }
    }

    /// The flush the newest unsynced change waits for: anything decided on
    /// the state now builds on it.
    pub(super) fn last_ticket(&self) -> Option<&Ticket> {
        self.unsynced.0.back().map(|u| &u.ticket)
    }

    /// Balance and sequence number as last synced (what reads show).
    pub(super) fn synced(&self) -> (u64, u64) {
        match self.unsynced.0.front() {
            Some(u) => (u.balance, u.sequence),
            None => (self.balance, self.sequence),
        }
    }
}
