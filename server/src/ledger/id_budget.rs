//! The server-wide cap on remembered request ids (`max_request_ids`). Every
//! account's request log registers each new id here, in order; when the total
//! is over the cap, the oldest ids server-wide are forgotten (the account
//! counts them as forgotten, so `GetOperation` on one of them answers
//! FAILED_PRECONDITION, as for any forgotten id).
//!
//! This lock is a leaf: it is taken under an account's lock, never the other
//! way round. Forgetting takes account locks, so it runs with none held, and
//! only with `try_lock`: it never blocks, a busy account is retried later.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// Ids registered in order: (account id, request id). Entries may be stale
/// (the account forgot the id itself); those are skipped when reached.
type Order = VecDeque<(Arc<str>, Arc<str>)>;

/// The global count and order of remembered request ids.
#[derive(Debug)]
pub struct IdBudget {
    cap: usize,
    remembered: AtomicUsize,
    order: Mutex<Order>,
    /// `order`'s length, stored under its lock, so that [`IdBudget::over`],
    /// asked after every op, reads it without taking that lock.
    registered: AtomicUsize,
}

impl Default for IdBudget {
    fn default() -> Self {
        IdBudget::new(super::LedgerConfig::default().max_request_ids)
    }
}

impl IdBudget {
    /// A budget of at most `cap` ids (at least 1).
    pub fn new(cap: usize) -> Self {
        IdBudget {
            cap: cap.max(1),
            remembered: AtomicUsize::new(0),
            order: Mutex::new(VecDeque::new()),
            registered: AtomicUsize::new(0),
        }
    }

    /// Request ids remembered now, over all accounts.
    pub fn remembered(&self) -> usize {
        self.remembered.load(Ordering::Relaxed)
    }

    /// A new id is remembered by `account`.
    pub(super) fn added(&self, account: &Arc<str>, request_id: &Arc<str>) {
        self.remembered.fetch_add(1, Ordering::Relaxed);
        let mut order = self.order.lock();
        order.push_back((Arc::clone(account), Arc::clone(request_id)));
        self.registered.store(order.len(), Ordering::Relaxed);
    }

    /// An account forgot one id (its own retention, or [`IdBudget::trim`]).
    pub(super) fn forgot(&self) {
        self.remembered.fetch_sub(1, Ordering::Relaxed);
    }

    /// Whether the order holds more than the cap (so ids must be forgotten).
    pub(super) fn over(&self) -> bool {
        self.registered.load(Ordering::Relaxed) > self.cap
    }

    /// Pops the oldest registered id while more than `cap` are registered.
    /// `forget` tries to forget it on its account: `Some(true)` done (or the
    /// entry was stale), `Some(false)` still in use (it goes to the back),
    /// `None` the account is busy (it stays in front; try again later).
    pub(super) fn trim(&self, mut forget: impl FnMut(&str, &str) -> Option<bool>) {
        let mut budget = self.order.lock().len();
        while budget > 0 {
            budget -= 1;
            let Some((account, request_id)) = self.pop_if_over() else {
                return;
            };
            match forget(&account, &request_id) {
                Some(true) => {}
                Some(false) => self.put_back(false, account, request_id),
                None => {
                    self.put_back(true, account, request_id);
                    return;
                }
            }
        }
    }

    fn pop_if_over(&self) -> Option<(Arc<str>, Arc<str>)> {
        let mut order = self.order.lock();
        if order.len() <= self.cap {
            return None;
        }
        let oldest = order.pop_front();
        self.registered.store(order.len(), Ordering::Relaxed);
        oldest
    }

    /// Puts a popped id back: in front when its account was busy, at the
    /// back when it is still in use.
    fn put_back(&self, in_front: bool, account: Arc<str>, request_id: Arc<str>) {
        let mut order = self.order.lock();
        if in_front {
            order.push_front((account, request_id));
        } else {
            order.push_back((account, request_id));
        }
        self.registered.store(order.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use crate::ledger::{CallContext, Deposit, Ledger, LedgerConfig, LedgerError};

    fn deposit(l: &Ledger, account: &str, rid: &str) {
        let d = Deposit {
            account_id: account.into(),
            amount: 1,
            request_id: rid.into(),
        };
        l.deposit(&l.account(account).unwrap(), &d, &CallContext::detached())
            .unwrap();
    }

    #[test]
    fn the_oldest_ids_server_wide_are_forgotten_past_the_cap() {
        let l = Ledger::new(LedgerConfig {
            max_request_ids: 4,
            processing_delay: std::time::Duration::ZERO,
            ..LedgerConfig::default()
        });
        for id in ["a", "b", "c"] {
            l.open(id, 0).unwrap();
        }
        for (i, account) in ["a", "b", "c", "a", "b", "c", "a"].iter().enumerate() {
            deposit(&l, account, &format!("r{i}"));
            assert!(l.remembered_request_ids() <= 4);
        }
        assert_eq!(l.remembered_request_ids(), 4);
        // r0 (on a) was forgotten: its outcome cannot be told any more.
        let forgotten = l.operation(&l.account("a").unwrap(), "r0");
        assert!(
            matches!(forgotten, Err(LedgerError::OutcomeUnknown { .. })),
            "{forgotten:?}"
        );
        // r6 (on a) is remembered and replayed.
        assert!(l.operation(&l.account("a").unwrap(), "r6").unwrap().replayed);
        // The fence of an unknown id is itself an id, and the cap still holds.
        assert!(l.remembered_request_ids() <= 4);
    }
}
