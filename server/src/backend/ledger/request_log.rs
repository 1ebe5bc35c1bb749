//! The per-account memory of request ids: what each idempotent op did, so a
//! repeat is answered from here instead of applied twice. Bounded: past
//! `retention` ids the oldest is forgotten (FIFO) and counted; the server-wide
//! cap ([`IdBudget`]) may make it forget its oldest ids earlier, when its
//! owner (principal) remembers more ids than any other.
//!
//! Every op with a request id goes through here under its account's lock;
//! the ids and entries are stored in arrival order with an index by id (see
//! `id_slots`). The order may name an id more than once (forgotten, then
//! sent again): an id is always looked up by its text, whichever slot
//! holds its entry, exactly as when the order was a queue of ids.

use std::sync::Arc;

use super::error::{LedgerError, LedgerResult};
use super::id_budget::{IdBudget, Member};
use super::id_slots::{Slot, Slots};
use super::op::{Fingerprint, OpResult, Outcome};
use super::storage::{op_record, Record};

/// What the log holds for one request id.
#[derive(Debug, Clone)]
enum Entry {
    /// A waiting withdrawal owns the id but has not finished.
    Waiting(Fingerprint),
    /// The op finished (approved, denied or abandoned) with these parameters.
    Done(Fingerprint, StoredResult),
    /// `GetOperation` fenced an unseen id: any later copy is refused.
    Fenced,
}

/// An [`OpResult`] without its request id (the slot holds that).
#[derive(Debug, Clone, Copy)]
struct StoredResult {
    outcome: Outcome,
    balance: u64,
    sequence: u64,
    to_balance: u64,
    to_sequence: u64,
}

/// How to take back one change of the log (an op whose record a failed
/// flush lost): the id and what it held before, if anything.
#[derive(Debug)]
pub struct LogUndo(Option<(Arc<str>, Option<Entry>)>);

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// The id is new (or empty): the caller goes ahead.
    Fresh,
    /// A stored result to return as a replay.
    Replay(OpResult),
}

/// A bounded FIFO map from request id to what that request did.
#[derive(Debug)]
pub struct RequestLog {
    slots: Slots<Entry>,
    retention: usize,
    forgotten: u64,
    /// This log (its account and the account's owner) to the budget.
    member: Member,
    budget: Arc<IdBudget>,
}

impl RequestLog {
    /// An empty log of `account`, owned by `owner`, that remembers at most
    /// `retention` ids (at least 1) and registers each with the server-wide
    /// `budget`, in its owner's share.
    pub fn new(retention: usize, account: Arc<str>, owner: Option<Arc<str>>, budget: Arc<IdBudget>) -> Self {
        RequestLog {
            slots: Slots::new(retention.max(1).saturating_add(1)),
            retention: retention.max(1),
            forgotten: 0,
            member: budget.join(account, owner),
            budget,
        }
    }

    /// Forgets the id in the slot at `pos` for the server-wide cap: true
    /// when done (or nothing is remembered there any more), false when it is
    /// waiting and must stay (it goes to the back of its owner's order).
    pub fn forget_at(&mut self, pos: u64) -> bool {
        let Some(slot) = self.slots.at(pos) else {
            return true;
        };
        let node = slot.node;
        match slot.entry {
            None => return true,
            Some(Entry::Waiting(_)) => {
                self.budget.requeue(self.member, node);
                return false;
            }
            Some(_) => {}
        }
        self.slots.take(pos);
        self.forgotten += 1;
        self.budget.removed(self.member, node);
        // Drop forgotten ids from the front so the order stays bounded.
        while self
            .slots
            .front()
            .is_some_and(|(pos, slot)| self.holder(pos, slot).is_none())
        {
            self.slots.pop_front();
        }
        true
    }

    /// How many ids are remembered now.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// How many ids were forgotten to stay within the retention bound.
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// Decides whether `request_id` with `fingerprint` is new, a replay, or a conflict.
    pub fn check(
        &self,
        account_id: &str,
        request_id: &str,
        fingerprint: &Fingerprint,
    ) -> LedgerResult<Lookup> {
        if request_id.is_empty() {
            return Ok(Lookup::Fresh);
        }
        match self.entry(request_id) {
            None => Ok(Lookup::Fresh),
            Some(Entry::Fenced) => Ok(Lookup::Replay(replayed_not_applied(request_id))),
            Some(Entry::Waiting(stored_fp) | Entry::Done(stored_fp, _)) if stored_fp != fingerprint => {
                Err(LedgerError::RequestIdConflict {
                    account_id: account_id.to_owned(),
                    request_id: request_id.to_owned(),
                })
            }
            Some(Entry::Waiting(_)) => Err(LedgerError::InProgress(request_id.to_owned())),
            Some(Entry::Done(_, stored)) => Ok(Lookup::Replay(stored.to_result(request_id))),
        }
    }

    /// The stored result of `request_id`, if the log has one.
    pub fn get(&self, request_id: &str) -> LedgerResult<Option<OpResult>> {
        match self.entry(request_id) {
            None => Ok(None),
            Some(Entry::Fenced) => Ok(Some(replayed_not_applied(request_id))),
            Some(Entry::Waiting(_)) => Err(LedgerError::InProgress(request_id.to_owned())),
            Some(Entry::Done(_, stored)) => Ok(Some(stored.to_result(request_id))),
        }
    }

    /// Marks `request_id` as owned by a waiting op.
    pub fn mark_waiting(&mut self, request_id: &str, fingerprint: &Fingerprint) {
        self.put(request_id, Entry::Waiting(fingerprint.clone()));
    }

    /// Remembers the result of a finished op.
    pub fn record(&mut self, fingerprint: &Fingerprint, result: &OpResult) -> LogUndo {
        let stored = StoredResult {
            outcome: result.outcome,
            balance: result.balance,
            sequence: result.sequence,
            to_balance: result.to_balance,
            to_sequence: result.to_sequence,
        };
        self.put(&result.request_id, Entry::Done(fingerprint.clone(), stored))
    }

    /// Fences an unseen id so that no later copy of it is ever applied.
    pub fn fence(&mut self, request_id: &str) -> LogUndo {
        self.put(request_id, Entry::Fenced)
    }

    /// Takes back a change (newest first). An id the log forgot meanwhile
    /// stays forgotten; one it added is removed again.
    pub fn undo(&mut self, undo: LogUndo) {
        let Some((key, before)) = undo.0 else {
            return;
        };
        let Some(pos) = self.find(&key) else {
            return;
        };
        match before {
            None => {
                let node = self.slots.get(pos).node;
                self.slots.take(pos);
                self.budget.removed(self.member, node);
            }
            Some(before) => {
                if let Some(entry) = self.slots.entry_mut(pos) {
                    *entry = before;
                }
            }
        }
    }

    fn put(&mut self, request_id: &str, entry: Entry) -> LogUndo {
        if request_id.is_empty() {
            return LogUndo(None);
        }
        let hash = self.slots.hash(request_id);
        if let Some(pos) = self.slots.find(request_id, hash) {
            let key = Arc::clone(&self.slots.get(pos).key);
            let before = self.slots.entry_mut(pos).map(|e| std::mem::replace(e, entry));
            // A waiting op's marker is not restored: that op is over.
            let before = before.filter(|e| !matches!(e, Entry::Waiting(_)));
            return LogUndo(Some((key, before)));
        }
        let key: Arc<str> = Arc::from(request_id);
        let node = self.budget.added(self.member, self.slots.next_pos());
        self.slots.push_back(Slot {
            key: Arc::clone(&key),
            hash,
            node,
            entry: Some(entry),
        });
        // Each id is looked at once at most, so waiting ids cannot spin this.
        let mut budget = self.slots.order_len();
        while self.slots.len() > self.retention && budget > 0 {
            self.evict_oldest();
            budget -= 1;
        }
        LogUndo(Some((key, None)))
    }

    fn evict_oldest(&mut self) {
        let Some((front, slot)) = self.slots.front() else {
            return;
        };
        let holder = self.holder(front, slot);
        let waiting = holder.is_some_and(|pos| matches!(self.slots.get(pos).entry, Some(Entry::Waiting(_))));
        let Some(slot) = self.slots.pop_front() else {
            return;
        };
        match holder {
            // A waiting id is still in use: keep it, its place goes to the back.
            Some(holder) if waiting => {
                let node = slot.node;
                let pos = self.slots.push_back(slot);
                // Only a slot that holds its entry has a node (a stale one's may be reused).
                if holder == front {
                    self.budget.moved(node, pos);
                }
            }
            // Its entry is in this slot (popped with it) or in a later one.
            Some(pos) => {
                let node = if pos == front {
                    slot.node
                } else {
                    let node = self.slots.get(pos).node;
                    self.slots.take(pos);
                    node
                };
                self.forgotten += 1;
                self.budget.removed(self.member, node);
            }
            // A key forgotten already (server-wide cap) is just dropped from the order.
            None => {}
        }
    }

    /// The id in the slot at `pos`, if it still holds one, and whether it is waiting.
    #[cfg(test)]
    pub fn key_at(&self, pos: u64) -> Option<(Arc<str>, bool)> {
        let slot = self.slots.at(pos)?;
        let waiting = matches!(slot.entry.as_ref()?, Entry::Waiting(_));
        Some((Arc::clone(&slot.key), waiting))
    }

    /// The position of the slot holding `request_id`'s entry, if remembered.
    #[cfg(test)]
    pub fn position(&self, request_id: &str) -> Option<u64> {
        self.find(request_id)
    }

    /// The position of the slot holding `request_id`'s entry, if remembered.
    fn find(&self, request_id: &str) -> Option<u64> {
        self.slots.find(request_id, self.slots.hash(request_id))
    }

    /// What is remembered for `request_id`.
    fn entry(&self, request_id: &str) -> Option<&Entry> {
        let pos = self.find(request_id)?;
        self.slots.get(pos).entry.as_ref()
    }

    /// Where the entry of the id in `slot` (at `pos`) is: that slot, or a
    /// later one if the id was forgotten there and sent again.
    fn holder(&self, pos: u64, slot: &Slot<Entry>) -> Option<u64> {
        match slot.entry {
            Some(_) => Some(pos),
            None => self.slots.find(&slot.key, slot.hash),
        }
    }

    /// Sets the count of forgotten ids (a snapshot's, on recovery).
    pub fn restore_forgotten(&mut self, forgotten: u64) {
        self.forgotten = forgotten;
    }

    /// Every finished or fenced id, oldest first, as snapshot records of
    /// `account`. Waiting ids are left out: their op has not happened.
    pub fn export(&self, account: &Arc<str>, out: &mut Vec<Record>) {
        for slot in self.slots.iter() {
            let key = &slot.key;
            let entry = match &slot.entry {
                Some(entry) => Some(entry),
                None => self.entry(key),
            };
            match entry {
                Some(Entry::Done(fp, stored)) => out.push(op_record(account, fp, &stored.to_result(key))),
                Some(Entry::Fenced) => out.push(Record::Fence {
                    account: Arc::clone(account),
                    request_id: Arc::clone(key),
                }),
                Some(Entry::Waiting(_)) | None => {}
            }
        }
    }
}

impl StoredResult {
    fn to_result(self, request_id: &str) -> OpResult {
        OpResult {
            request_id: request_id.to_owned(),
            outcome: self.outcome,
            balance: self.balance,
            sequence: self.sequence,
            replayed: true,
            to_balance: self.to_balance,
            to_sequence: self.to_sequence,
        }
    }
}

fn replayed_not_applied(request_id: &str) -> OpResult {
    OpResult {
        replayed: true,
        ..OpResult::not_applied(request_id)
    }
}
