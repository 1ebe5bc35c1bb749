//! The state an account's mutex guards (balance, sequence counter, request
//! log, waiters, unsynced changes) and the single-account steps taken under
//! it. Shared by the account (`account`), the lock guard (`locked`) and the
//! zoo's hooks (`zoo`); it imports none of them.

use std::sync::Arc;

use super::config::LedgerConfig;
use super::error::LedgerResult;
use super::op::{Fingerprint, OpResult, Outcome, Withdrawal};
use super::pending::Pending;
use super::request_log::{LogUndo, RequestLog};
use super::storage::Ticket;
use super::unsynced::Unsynced;
use super::waiters::WaitList;

/// The state the account's mutex guards.
#[derive(Debug)]
pub(super) struct State {
    pub(super) balance: u64,
    pub(super) sequence: u64,
    pub(super) waiters: WaitList,
    pub(super) log: RequestLog,
    /// Changes applied to memory whose records are not synced yet.
    pub(super) unsynced: Unsynced,
}

impl State {
    /// Wakes the waiters the balance can serve now (call after adding funds,
    /// or after a woken waiter gave its share back).
    pub(super) fn wake_waiters(&mut self) {
        self.waiters.wake_served(self.balance);
    }

    /// Hands out the next sequence number. Gapless by construction: this is
    /// the only place that changes `sequence`, always under the lock.
    pub(super) fn next_sequence(&mut self) -> u64 {
        // 2^64 ops cannot happen in practice; saturate rather than panic.
        self.sequence = self.sequence.saturating_add(1);
        self.sequence
    }

    /// The sequence number the next op will take (taken only once it is durable).
    pub(super) fn peek_sequence(&self) -> u64 {
        self.sequence.saturating_add(1)
    }

    /// Records an abandoned op as not applied and returns that result (to
    /// give once the record is durable).
    pub(super) fn abandon(
        &mut self,
        cfg: &LedgerConfig,
        account: &Arc<str>,
        request_id: &str,
        fingerprint: &Fingerprint,
    ) -> LedgerResult<Pending<OpResult>> {
        let result = OpResult::not_applied(request_id);
        if request_id.is_empty() {
            return Ok(Pending::ready(result));
        }
        let ticket = cfg
            .storage
            .append_op(account, fingerprint, &result, self.last_ticket().as_slice())?;
        let undo = self.log.record(fingerprint, &result);
        self.push_unsynced(ticket.clone(), (self.balance, self.sequence), [undo]);
        Ok(Pending::after(result, ticket))
    }

    /// A stored answer replayed: given once what the account holds is synced.
    pub(super) fn replay(&self, result: OpResult) -> Pending<OpResult> {
        Pending::after(result, self.last_ticket().cloned())
    }

    /// Takes a sequence number and credits a deposit (leaving `balance`):
    /// made durable first, since memory never shows what storage could lose.
    pub(super) fn settle_deposit(
        &mut self,
        cfg: &LedgerConfig,
        account: &Arc<str>,
        request_id: &str,
        fp: &Fingerprint,
        balance: u64,
    ) -> LedgerResult<Pending<OpResult>> {
        self.commit_single(cfg, account, fp, request_id, (Outcome::Approved, balance))
    }

    /// Takes a sequence number, applies a withdrawal if funds allow, records
    /// it: decided on `seen`, made durable, only then applied to memory.
    pub(super) fn settle_withdrawal(
        &mut self,
        cfg: &LedgerConfig,
        account: &Arc<str>,
        w: &Withdrawal,
        fp: &Fingerprint,
        seen: u64,
    ) -> LedgerResult<Pending<OpResult>> {
        let (outcome, balance) = match seen.checked_sub(w.amount) {
            Some(left) => (Outcome::Approved, left),
            None => (Outcome::InsufficientFunds, self.balance),
        };
        self.commit_single(cfg, account, fp, &w.request_id, (outcome, balance))
    }

    /// Takes the next sequence number for a single-account op that ends
    /// with `outcome` and `balance`: queued for storage, applied to memory
    /// (the state before it kept until synced) and remembered under its
    /// request id; answered once its flush is synced.
    pub(super) fn commit_single(
        &mut self,
        cfg: &LedgerConfig,
        account: &Arc<str>,
        fp: &Fingerprint,
        request_id: &str,
        (outcome, balance): (Outcome, u64),
    ) -> LedgerResult<Pending<OpResult>> {
        let result = OpResult {
            request_id: request_id.to_owned(),
            outcome,
            balance,
            sequence: self.peek_sequence(),
            replayed: false,
            to_balance: 0,
            to_sequence: 0,
        };
        let ticket = cfg
            .storage
            .append_op(account, fp, &result, self.last_ticket().as_slice())?;
        let before = (self.balance, self.sequence);
        self.balance = balance;
        self.next_sequence();
        let undo = self.log.record(fp, &result);
        self.push_unsynced(ticket.clone(), before, [undo]);
        Ok(Pending::after(result, ticket))
    }

    /// Drops synced entries and rolls back failed ones (see `unsynced`).
    pub(super) fn settle_unsynced(&mut self) {
        if self
            .unsynced
            .settle(&mut self.balance, &mut self.sequence, &mut self.log)
        {
            // A rolled-back debit may have given money back to those waiting.
            self.wake_waiters();
        }
    }

    /// Waits (lock held) until every unsynced change is synced or rolled
    /// back; then memory holds synced state only. Flushes complete in
    /// order, so waiting for the newest one waits for them all.
    pub(super) fn wait_unsynced(&mut self) {
        if let Some(ticket) = self.last_ticket().cloned() {
            let _ = ticket.wait();
        }
        self.settle_unsynced();
        debug_assert!(self.unsynced.is_empty());
    }

    /// Remembers a change applied before `ticket`'s flush (see [`Unsynced::push`]).
    pub(super) fn push_unsynced(
        &mut self,
        ticket: Option<Ticket>,
        before: (u64, u64),
        log: impl IntoIterator<Item = LogUndo>,
    ) {
        self.unsynced.push(ticket, before, log);
    }

    /// The flush the newest unsynced change waits for: anything decided on
    /// the state now builds on it.
    pub(super) fn last_ticket(&self) -> Option<&Ticket> {
        self.unsynced.last_ticket()
    }

    /// Balance and sequence number as last synced (what reads show).
    pub(super) fn synced(&self) -> (u64, u64) {
        self.unsynced.synced((self.balance, self.sequence))
    }
}
