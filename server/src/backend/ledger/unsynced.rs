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

use super::request_log::LogUndo;
use super::request_log::RequestLog;
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

impl Unsynced {
    /// Drops synced entries; from the first failed one, rolls every entry
    /// back into `balance`, `sequence` and `log`, newest first. True when
    /// anything was rolled back (see the module doc).
    pub(super) fn settle(&mut self, balance: &mut u64, sequence: &mut u64, log: &mut RequestLog) -> bool {
        let queue = &mut self.0;
        while queue
            .front()
            .is_some_and(|u| matches!(u.ticket.status(), Some(Ok(()))))
        {
            queue.pop_front();
        }
        let Some(first_failed) = queue.iter().position(|u| u.ticket.failed()) else {
            return false;
        };
        while queue.len() > first_failed {
            let Some(undo) = queue.pop_back() else {
                break;
            };
            *balance = undo.balance;
            *sequence = undo.sequence;
            undo.log.into_iter().rev().for_each(|l| log.undo(l));
        }
        true
    }

    /// Remembers a change applied before `ticket`'s flush, made from
    /// `before` = (balance, sequence); nothing when already durable.
    /// (`log` is collected only when kept: in memory, with no ticket, an op
    /// allocates nothing here.)
    pub(super) fn push(
        &mut self,
        ticket: Option<Ticket>,
        before: (u64, u64),
        log: impl IntoIterator<Item = LogUndo>,
    ) {
        if let Some(ticket) = ticket {
            let (balance, sequence) = before;
            self.0.push_back(Undo {
                ticket,
                balance,
                sequence,
                log: log.into_iter().collect(),
            });
        }
    }

    /// The flush the newest unsynced change waits for.
    pub(super) fn last_ticket(&self) -> Option<&Ticket> {
        self.0.back().map(|u| &u.ticket)
    }

    /// Whether every change is synced.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (balance, sequence) as last synced, given the current ones.
    pub(super) fn synced(&self, now: (u64, u64)) -> (u64, u64) {
        match self.0.front() {
            Some(u) => (u.balance, u.sequence),
            None => now,
        }
    }
}
