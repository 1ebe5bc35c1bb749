//! The server-wide cap (`IdBudget`) against its specification, with several
//! principals on several accounts. Random ops (results, fences, waiting ops
//! and their end) run on real request logs sharing one budget, trimmed after
//! each op as the ledger does. A model of each account's log (retention
//! only: `request_log_model`) says what each remembers; the cap may take an
//! id from it only when the spec allows it:
//! - only while more than the cap are remembered;
//! - only from a principal that remembers the most (more than C/P, so never
//!   from one at or below its fair share), and its oldest id (a waiting op's
//!   id met by the cap goes to the back instead).
//!
//! After every op each log answers as its model, every share is as the
//! model counts it, and the cap holds unless the principal that remembers
//! the most has only waiting ops' ids.

use std::collections::HashMap;
use std::sync::Arc;

use super::id_budget::IdBudget;
use super::op::{Fingerprint, OpKind, OpResult, Outcome};
use super::request_log::RequestLog;
use super::request_log_model::{checked, Model, ModelEntry, Rng, RETENTION};

/// The cap: small, so that it is reached all the time.
const CAP: usize = 7;
/// The accounts and their owners (`None`: an account opened without tokens).
const ACCOUNTS: [(&str, Option<&str>); 6] = [
    ("a1", Some("alice")),
    ("a2", Some("alice")),
    ("b1", Some("bob")),
    ("c1", Some("carol")),
    ("c2", Some("carol")),
    ("n1", None),
];
/// Request ids each account picks from: few, so that they repeat.
const IDS: [&str; 6] = ["p", "q", "r", "s", "t", "u"];
const STEPS: usize = 300;
const SEEDS: u64 = 100;

/// The world: real logs on one budget, and the spec's view of them.
struct World {
    budget: Arc<IdBudget>,
    logs: Vec<RequestLog>,
    models: Vec<Model>,
    /// When each remembered (account, id) arrived in its principal's order.
    arrived: HashMap<(usize, Arc<str>), u64>,
    clock: u64,
}

fn owner(account: usize) -> Option<&'static str> {
    ACCOUNTS[account].1
}

fn index_of(name: &str) -> usize {
    ACCOUNTS
        .iter()
        .position(|(a, _)| *a == name)
        .expect("a known account")
}

impl World {
    fn new() -> World {
        let budget = Arc::new(IdBudget::new(CAP));
        let logs = ACCOUNTS
            .iter()
            .map(|(a, o)| RequestLog::new(RETENTION, Arc::from(*a), o.map(Arc::from), Arc::clone(&budget)))
            .collect();
        World {
            budget,
            logs,
            models: ACCOUNTS.iter().map(|_| Model::default()).collect(),
            arrived: HashMap::new(),
            clock: 0,
        }
    }

    /// Ids each principal remembers, as the model counts them.
    fn shares(&self) -> HashMap<Option<&'static str>, usize> {
        let mut shares = HashMap::new();
        for (a, model) in self.models.iter().enumerate() {
            *shares.entry(owner(a)).or_default() += model.entries.len();
        }
        shares
    }

    /// Notes the arrival of ids the model remembers now and did not before;
    /// forgets the arrival of ids it no longer remembers.
    fn note_arrivals(&mut self, account: usize) {
        self.arrived
            .retain(|(a, id), _| *a != account || self.models[account].entries.contains_key(id));
        for id in self.models[account].entries.keys() {
            self.arrived.entry((account, Arc::clone(id))).or_insert_with(|| {
                self.clock += 1;
                self.clock
            });
        }
    }

    /// One random op on one account, on the log and its model.
    fn op(&mut self, rng: &mut Rng, heavy: usize) {
        let account = match rng.below(2) {
            0 => heavy,
            _ => rng.below(ACCOUNTS.len() as u64) as usize,
        };
        let id = IDS[rng.below(IDS.len() as u64) as usize];
        let fp = Fingerprint::new(OpKind::Withdraw, 1);
        let (log, model) = (&mut self.logs[account], &mut self.models[account]);
        if matches!(model.entries.get(id), Some(ModelEntry::Waiting(_))) {
            // A waiting op ends.
            let r = done(id, rng.below(100));
            let _ = log.record(&fp, &r);
            model.put(id, ModelEntry::Done(fp, r));
        } else if !model.entries.contains_key(id) {
            match rng.below(4) {
                0 => {
                    let _ = log.fence(id);
                    model.put(id, ModelEntry::Fenced);
                }
                1 => {
                    log.mark_waiting(id, &fp);
                    model.put(id, ModelEntry::Waiting(fp));
                }
                _ => {
                    let r = done(id, rng.below(100));
                    let _ = log.record(&fp, &r);
                    model.put(id, ModelEntry::Done(fp, r));
                }
            }
        }
        self.note_arrivals(account);
    }

    /// The ledger's trim after an op, each forgetting checked against the spec.
    fn trim(&mut self) {
        let budget = Arc::clone(&self.budget);
        budget.trim(|name, pos| {
            let account = index_of(name);
            let Some((id, waiting)) = self.logs[account].key_at(pos) else {
                return Some(self.logs[account].forget_at(pos));
            };
            if waiting {
                assert!(!self.logs[account].forget_at(pos), "a waiting op's id forgotten");
                // It goes to the back of its principal's order.
                self.clock += 1;
                self.arrived.insert((account, id), self.clock);
                return Some(false);
            }
            self.allowed(account, &id);
            assert!(self.logs[account].forget_at(pos));
            assert!(self.models[account].forget(&id));
            self.note_arrivals(account);
            Some(true)
        });
    }

    /// Asserts that the spec allows the cap to forget `id` of `account` now.
    fn allowed(&self, account: usize, id: &Arc<str>) {
        let shares = self.shares();
        let total: usize = shares.values().sum();
        let holding = shares.values().filter(|&&n| n > 0).count();
        let mine = shares[&owner(account)];
        assert!(total > CAP, "forgot {id} of {account} within the cap ({total})");
        assert!(
            mine * holding > CAP,
            "forgot {id} of {:?}, at or below its fair share ({mine} of {CAP}, {holding} principals)",
            owner(account)
        );
        assert!(
            shares.values().all(|&n| n <= mine),
            "forgot {id} of {:?} ({mine}) while another remembers more: {shares:?}",
            owner(account)
        );
        let when = self.arrived[&(account, Arc::clone(id))];
        let older = self.arrived.iter().find(|((a, other), &t)| {
            owner(*a) == owner(account)
                && t < when
                && !matches!(self.models[*a].entries.get(other), Some(ModelEntry::Waiting(_)))
        });
        assert!(
            older.is_none(),
            "forgot {id} of {account} before the older {older:?}"
        );
    }

    /// Every log answers as its model; the shares and the cap are as specified.
    fn same(&self) {
        for (a, (log, model)) in self.logs.iter().zip(&self.models).enumerate() {
            for id in IDS {
                let fp = Fingerprint::new(OpKind::Withdraw, 1);
                assert_eq!(
                    checked(log, id, &fp),
                    model.check(id, &fp),
                    "account {a}, id {id}"
                );
            }
            assert_eq!(log.len(), model.entries.len(), "account {a}: len");
        }
        let shares = self.shares();
        for (principal, n) in self.budget.shares() {
            let expected = shares.get(&principal.as_deref()).copied().unwrap_or(0);
            assert_eq!(n, expected, "share of {principal:?}");
        }
        let total: usize = shares.values().sum();
        assert_eq!(self.budget.remembered(), total, "remembered");
        if total > CAP {
            let most = shares.values().copied().max().unwrap_or(0);
            let stuck = shares.iter().any(|(p, &n)| n == most && self.only_waiting(*p));
            assert!(
                stuck,
                "over the cap ({total}) with ids to forget: {shares:?} {:?}",
                self.models.iter().map(|m| &m.entries).collect::<Vec<_>>()
            );
        }
    }

    fn only_waiting(&self, principal: Option<&str>) -> bool {
        (0..ACCOUNTS.len()).filter(|&a| owner(a) == principal).all(|a| {
            self.models[a]
                .entries
                .values()
                .all(|e| matches!(e, ModelEntry::Waiting(_)))
        })
    }
}

fn done(id: &str, balance: u64) -> OpResult {
    OpResult {
        request_id: id.to_owned(),
        outcome: Outcome::Approved,
        balance,
        sequence: 1,
        replayed: false,
        to_balance: 0,
        to_sequence: 0,
    }
}

#[test]
fn the_cap_only_takes_the_oldest_ids_of_the_principal_remembering_the_most() {
    for seed in 1..=SEEDS {
        let mut world = World::new();
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        for n in 0..STEPS {
            // Skewed traffic: the accounts take turns being the busy one.
            world.op(&mut rng, n / 50 % ACCOUNTS.len());
            let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                world.trim();
                world.same();
            }));
            assert!(checked.is_ok(), "seed {seed}, step {n}");
        }
    }
}
