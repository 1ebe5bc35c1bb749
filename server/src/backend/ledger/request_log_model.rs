//! The request log against a model of it: the map-and-queue it was before
//! its ids moved into slots (`id_slots`), kept here as the specification.
//! Random changes on a few ids (so ids are forgotten, sent again, waiting
//! at the front, undone) must leave both answering the same everywhere.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::id_budget::IdBudget;
use super::op::{Fingerprint, OpKind, OpResult, Outcome};
use super::request_log::{LogUndo, Lookup, RequestLog};
use super::storage::{op_record, Record};

/// Ids the changes pick from: few, so that they repeat.
const IDS: [&str; 5] = ["a", "b", "c", "d", "e"];
/// The model's retention: small, so that ids age out all the time.
pub(super) const RETENTION: usize = 3;
/// Changes per seed, and seeds.
const STEPS: usize = 400;
const SEEDS: u64 = 200;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum ModelEntry {
    Waiting(Fingerprint),
    Done(Fingerprint, OpResult),
    Fenced,
}

/// The log as it was: a map from id to entry, and the ids in arrival order
/// (stale and repeated ones included).
#[derive(Default)]
pub(super) struct Model {
    pub(super) entries: HashMap<Arc<str>, ModelEntry>,
    order: VecDeque<Arc<str>>,
    forgotten: u64,
    remembered: i64,
}

type ModelUndo = Option<(Arc<str>, Option<ModelEntry>)>;

impl Model {
    pub(super) fn put(&mut self, id: &str, entry: ModelEntry) -> ModelUndo {
        if let Some(key) = self.entries.get_key_value(id).map(|(k, _)| Arc::clone(k)) {
            let before = self.entries.insert(Arc::clone(&key), entry);
            return Some((key, before.filter(|e| !matches!(e, ModelEntry::Waiting(_)))));
        }
        let key: Arc<str> = Arc::from(id);
        self.entries.insert(Arc::clone(&key), entry);
        self.remembered += 1;
        self.order.push_back(Arc::clone(&key));
        let mut budget = self.order.len();
        while self.entries.len() > RETENTION && budget > 0 {
            self.evict_oldest();
            budget -= 1;
        }
        Some((key, None))
    }

    fn evict_oldest(&mut self) {
        let Some(oldest) = self.order.pop_front() else {
            return;
        };
        if let Some(ModelEntry::Waiting(_)) = self.entries.get(&oldest) {
            self.order.push_back(oldest);
            return;
        }
        if self.entries.remove(&oldest).is_some() {
            self.forgotten += 1;
            self.remembered -= 1;
        }
    }

    pub(super) fn forget(&mut self, id: &str) -> bool {
        match self.entries.get(id) {
            None => return true,
            Some(ModelEntry::Waiting(_)) => return false,
            Some(_) => {}
        }
        self.entries.remove(id);
        self.forgotten += 1;
        self.remembered -= 1;
        while self.order.front().is_some_and(|k| !self.entries.contains_key(k)) {
            self.order.pop_front();
        }
        true
    }

    fn undo(&mut self, undo: ModelUndo) {
        match undo {
            Some((key, None)) if self.entries.remove(&key).is_some() => self.remembered -= 1,
            Some((key, Some(before))) => {
                if let Some(slot) = self.entries.get_mut(&key) {
                    *slot = before;
                }
            }
            _ => {}
        }
    }

    /// What `check` would answer, as text.
    pub(super) fn check(&self, id: &str, fp: &Fingerprint) -> String {
        let replay = |r: &OpResult| {
            let r = OpResult {
                replayed: true,
                ..r.clone()
            };
            format!("{:?}", Ok::<_, ()>(Lookup::Replay(r)))
        };
        match self.entries.get(id) {
            None => "Ok(Fresh)".into(),
            Some(ModelEntry::Fenced) => replay(&OpResult::not_applied(id)),
            Some(ModelEntry::Waiting(held) | ModelEntry::Done(held, _)) if held != fp => "conflict".into(),
            Some(ModelEntry::Waiting(_)) => "in progress".into(),
            Some(ModelEntry::Done(_, r)) => replay(r),
        }
    }

    fn export(&self, account: &Arc<str>) -> Vec<Record> {
        let mut out = Vec::new();
        for key in &self.order {
            match self.entries.get(key) {
                Some(ModelEntry::Done(fp, r)) => out.push(op_record(account, fp, r)),
                Some(ModelEntry::Fenced) => out.push(Record::Fence {
                    account: Arc::clone(account),
                    request_id: Arc::clone(key),
                }),
                _ => {}
            }
        }
        out
    }
}

/// `check`'s answer as the model's text.
pub(super) fn checked(log: &RequestLog, id: &str, fp: &Fingerprint) -> String {
    match log.check("acc", id, fp) {
        Ok(Lookup::Fresh) => "Ok(Fresh)".into(),
        Ok(replay) => format!("{:?}", Ok::<_, ()>(replay)),
        Err(super::LedgerError::RequestIdConflict { .. }) => "conflict".into(),
        Err(super::LedgerError::InProgress(_)) => "in progress".into(),
        Err(e) => format!("{e:?}"),
    }
}

/// A small deterministic generator (xorshift), so a failure names its seed.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn fingerprint(rng: &mut Rng) -> Fingerprint {
    Fingerprint::new(OpKind::Withdraw, 1 + rng.below(2))
}

fn result(rng: &mut Rng, id: &str) -> OpResult {
    OpResult {
        request_id: id.to_owned(),
        outcome: Outcome::Approved,
        balance: rng.below(100),
        sequence: rng.below(100),
        replayed: false,
        to_balance: 0,
        to_sequence: 0,
    }
}

/// One random change, made on both.
fn step(rng: &mut Rng, log: &mut RequestLog, model: &mut Model, undos: &mut Vec<(LogUndo, ModelUndo)>) {
    let id = IDS[rng.below(IDS.len() as u64) as usize];
    match rng.below(6) {
        0 | 1 => {
            let (fp, r) = (fingerprint(rng), result(rng, id));
            undos.push((log.record(&fp, &r), model.put(id, ModelEntry::Done(fp, r))));
        }
        2 => {
            let fp = fingerprint(rng);
            log.mark_waiting(id, &fp);
            model.put(id, ModelEntry::Waiting(fp));
        }
        3 => undos.push((log.fence(id), model.put(id, ModelEntry::Fenced))),
        4 => {
            let pos = log.position(id).unwrap_or(u64::MAX);
            assert_eq!(log.forget_at(pos), model.forget(id), "forget {id}");
        }
        _ => {
            if let Some((undo, model_undo)) = undos.pop() {
                log.undo(undo);
                model.undo(model_undo);
            }
        }
    }
}

fn same(log: &RequestLog, model: &Model, budget: &IdBudget, account: &Arc<str>) {
    for id in IDS {
        for amount in [1, 2] {
            let fp = Fingerprint::new(OpKind::Withdraw, amount);
            assert_eq!(checked(log, id, &fp), model.check(id, &fp), "check {id} {amount}");
        }
    }
    assert_eq!(log.len(), model.entries.len(), "len");
    assert_eq!(log.forgotten(), model.forgotten, "forgotten");
    assert_eq!(budget.remembered() as i64, model.remembered, "remembered");
    let mut exported = Vec::new();
    log.export(account, &mut exported);
    assert_eq!(exported, model.export(account), "export");
}

#[test]
fn the_slots_answer_as_the_map_and_queue_did() {
    let account: Arc<str> = Arc::from("acc");
    for seed in 1..=SEEDS {
        let budget = Arc::new(IdBudget::new(1_000_000));
        let mut log = RequestLog::new(RETENTION, Arc::clone(&account), None, Arc::clone(&budget));
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let (mut model, mut undos) = (Model::default(), Vec::new());
        for n in 0..STEPS {
            step(&mut rng, &mut log, &mut model, &mut undos);
            let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                same(&log, &model, &budget, &account)
            }));
            assert!(checked.is_ok(), "seed {seed}, step {n}");
        }
    }
}
