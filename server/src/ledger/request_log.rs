//! The per-account memory of request ids: what each idempotent op did, so a
//! repeat is answered from here instead of applied twice. Bounded: past
//! `retention` ids the oldest is forgotten (FIFO) and counted; the server-wide
//! cap ([`IdBudget`]) may make it forget its oldest ids earlier.
//!
//! Every op with a request id goes through here under its account's lock,
//! so the map is hashbrown's, whose entry API looks each id up once per
//! change, with a randomly seeded foldhash (see `id_hash`).

use std::collections::VecDeque;
use std::sync::Arc;

use hashbrown::hash_map::EntryRef;
use hashbrown::HashMap;

use super::id_hash::IdHasher;

use super::error::{LedgerError, LedgerResult};
use super::id_budget::IdBudget;
use super::op::{Fingerprint, OpResult, Outcome};
use super::storage::{op_record, Record};

/// What the log holds for one request id.
#[derive(Debug, Clone)]
enum Entry {
    /// A waiting withdrawal owns the id but has not finished.
    Pending(Fingerprint),
    /// The op finished (approved, denied or abandoned) with these parameters.
    Done(Fingerprint, StoredResult),
    /// `GetOperation` fenced an unseen id: any later copy is refused.
    Fenced,
}

/// An [`OpResult`] without its request id (the map key holds that).
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
    entries: HashMap<Arc<str>, Entry, IdHasher>,
    order: VecDeque<Arc<str>>,
    retention: usize,
    forgotten: u64,
    account: Arc<str>,
    budget: Arc<IdBudget>,
}

impl RequestLog {
    /// An empty log of `account` that remembers at most `retention` ids (at
    /// least 1) and registers each with the server-wide `budget`.
    pub fn new(retention: usize, account: Arc<str>, budget: Arc<IdBudget>) -> Self {
        RequestLog {
            entries: HashMap::default(),
            order: VecDeque::new(),
            retention: retention.max(1),
            forgotten: 0,
            account,
            budget,
        }
    }

    /// Forgets `request_id` for the server-wide cap: true when done (or it
    /// was not remembered), false when it is pending and must stay.
    pub fn forget(&mut self, request_id: &str) -> bool {
        match self.entries.get(request_id) {
            None => return true,
            Some(Entry::Pending(_)) => return false,
            Some(_) => {}
        }
        self.entries.remove(request_id);
        self.forgotten += 1;
        self.budget.forgot();
        // Drop forgotten keys from the front so `order` stays bounded.
        while self.order.front().is_some_and(|k| !self.entries.contains_key(k)) {
            self.order.pop_front();
        }
        true
    }

    /// How many ids are remembered now.
    pub fn len(&self) -> usize {
        self.entries.len()
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
        match self.entries.get(request_id) {
            None => Ok(Lookup::Fresh),
            Some(Entry::Fenced) => Ok(Lookup::Replay(replayed_not_applied(request_id))),
            Some(Entry::Pending(stored_fp) | Entry::Done(stored_fp, _)) if stored_fp != fingerprint => {
                Err(LedgerError::RequestIdConflict {
                    account_id: account_id.to_owned(),
                    request_id: request_id.to_owned(),
                })
            }
            Some(Entry::Pending(_)) => Err(LedgerError::InProgress(request_id.to_owned())),
            Some(Entry::Done(_, stored)) => Ok(Lookup::Replay(stored.to_result(request_id))),
        }
    }

    /// The stored result of `request_id`, if the log has one.
    pub fn get(&self, request_id: &str) -> LedgerResult<Option<OpResult>> {
        match self.entries.get(request_id) {
            None => Ok(None),
            Some(Entry::Fenced) => Ok(Some(replayed_not_applied(request_id))),
            Some(Entry::Pending(_)) => Err(LedgerError::InProgress(request_id.to_owned())),
            Some(Entry::Done(_, stored)) => Ok(Some(stored.to_result(request_id))),
        }
    }

    /// Marks `request_id` as owned by a waiting op.
    pub fn mark_pending(&mut self, request_id: &str, fingerprint: &Fingerprint) {
        self.put(request_id, Entry::Pending(fingerprint.clone()));
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
        match undo.0 {
            Some((key, None)) if self.entries.remove(&key).is_some() => self.budget.forgot(),
            Some((key, Some(before))) => {
                if let Some(slot) = self.entries.get_mut(&key) {
                    *slot = before;
                }
            }
            Some((_, None)) | None => {}
        }
    }

    fn put(&mut self, request_id: &str, entry: Entry) -> LogUndo {
        if request_id.is_empty() {
            return LogUndo(None);
        }
        let key = match self.entries.entry_ref(request_id) {
            EntryRef::Occupied(mut slot) => {
                // A waiting op's marker is not restored: that op is over.
                let before = std::mem::replace(slot.get_mut(), entry);
                let before = Some(before).filter(|e| !matches!(e, Entry::Pending(_)));
                return LogUndo(Some((Arc::clone(slot.key()), before)));
            }
            EntryRef::Vacant(slot) => Arc::clone(slot.insert_entry(entry).key()),
        };
        self.budget.added(&self.account, &key);
        self.order.push_back(Arc::clone(&key));
        // Each id is looked at once at most, so pending ids cannot spin this.
        let mut budget = self.order.len();
        while self.entries.len() > self.retention && budget > 0 {
            self.evict_oldest();
            budget -= 1;
        }
        LogUndo(Some((key, None)))
    }

    fn evict_oldest(&mut self) {
        let Some(oldest) = self.order.pop_front() else {
            return;
        };
        match self.entries.entry_ref(&*oldest) {
            // A pending id is still in use: keep it, move it to the back.
            EntryRef::Occupied(slot) if matches!(slot.get(), Entry::Pending(_)) => {
                self.order.push_back(oldest);
            }
            EntryRef::Occupied(slot) => {
                slot.remove();
                self.forgotten += 1;
                self.budget.forgot();
            }
            // A key forgotten already (server-wide cap) is just dropped from the order.
            EntryRef::Vacant(_) => {}
        }
    }

    /// Sets the count of forgotten ids (a snapshot's, on recovery).
    pub fn restore_forgotten(&mut self, forgotten: u64) {
        self.forgotten = forgotten;
    }

    /// Every finished or fenced id, oldest first, as snapshot records of
    /// `account`. Pending ids are left out: their op has not happened.
    pub fn export(&self, account: &Arc<str>, out: &mut Vec<Record>) {
        for key in &self.order {
            match self.entries.get(key) {
                Some(Entry::Done(fp, stored)) => out.push(op_record(account, fp, &stored.to_result(key))),
                Some(Entry::Fenced) => out.push(Record::Fence {
                    account: Arc::clone(account),
                    request_id: Arc::clone(key),
                }),
                Some(Entry::Pending(_)) | None => {}
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
