//! The server-wide cap on remembered request ids (`max_request_ids`), shared
//! fairly between principals. Every account's request log registers each id
//! it starts remembering here, in its principal's order (the principal of an
//! account is its owner, `--auth-tokens`; without tokens every account has
//! the same one, `None`). When more than the cap are remembered, the ids
//! forgotten are the oldest of the principal that remembers the most: so with
//! P principals remembering ids and a cap C, one that remembers at most C/P
//! ids never loses one to the cap (the largest then holds more than C/P), and
//! no principal's traffic (ops, or fences of `GetOperation`) can make another
//! principal's id be forgotten while that one holds its fair share. The
//! account counts an id forgotten so as forgotten: `GetOperation` on it
//! answers FAILED_PRECONDITION, as for any forgotten id.
//!
//! Each principal's ids are a doubly linked list through one slab of nodes
//! (an id the account forgets itself, under its own retention, is unlinked
//! at once, wherever it is), and the principals are kept sorted by how many
//! ids they remember: a count changes by one at a time, so one binary search
//! and one swap keep the order. Per id: O(log P) (O(1) with one principal),
//! no allocation once the slab has grown; 24 bytes of node.
//!
//! This lock is a leaf: it is taken under an account's lock, never the other
//! way round. Forgetting takes account locks, so it runs with none held, and
//! only with `try_lock`: it never blocks, a busy account is retried later.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// No node: the end of a list, or an id the budget does not track (only if
/// 2^32 - 1 ids were remembered at once, which no memory holds).
pub(super) const NO_NODE: u32 = u32::MAX;

/// What a request log is to the budget: its account and the account's principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Member {
    account: usize,
    principal: usize,
}

/// One remembered id: where it is (account, slot position in its log) and
/// its neighbours in its principal's order (a free node: `next` only).
#[derive(Debug, Clone, Copy)]
struct Node {
    account: usize,
    pos: u64,
    prev: u32,
    next: u32,
}

/// One principal's ids, oldest first, and its place among the principals.
#[derive(Debug)]
struct Principal {
    owner: Option<Arc<str>>,
    head: u32,
    tail: u32,
    count: usize,
    /// Its index in `Inner::ranked`.
    rank: usize,
}

/// Everything under the budget's lock.
#[derive(Debug)]
struct Inner {
    nodes: Vec<Node>,
    /// The first free node (freed nodes are reused before the slab grows).
    free: u32,
    principals: Vec<Principal>,
    /// Principal indices, ascending by `count`: the last one remembers the most.
    ranked: Vec<usize>,
    by_owner: HashMap<Option<Arc<str>>, usize>,
    /// Account ids, by the index their logs registered with.
    accounts: Vec<Arc<str>>,
}

/// The global count of remembered request ids and each principal's order.
#[derive(Debug)]
pub struct IdBudget {
    cap: usize,
    /// Ids remembered now (== every principal's count added up), readable
    /// without the lock: [`IdBudget::over`] is asked after every op.
    remembered: AtomicUsize,
    inner: Mutex<Inner>,
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
            inner: Mutex::new(Inner {
                nodes: Vec::new(),
                free: NO_NODE,
                principals: Vec::new(),
                ranked: Vec::new(),
                by_owner: HashMap::new(),
                accounts: Vec::new(),
            }),
        }
    }

    /// Request ids remembered now, over all accounts.
    pub fn remembered(&self) -> usize {
        self.remembered.load(Ordering::Relaxed)
    }

    /// How many ids each principal remembers now (`None`: accounts without an owner).
    pub fn shares(&self) -> Vec<(Option<Arc<str>>, usize)> {
        let inner = self.inner.lock();
        inner
            .principals
            .iter()
            .map(|p| (p.owner.clone(), p.count))
            .collect()
    }

    /// Registers the log of `account`, owned by `owner` (called once per account).
    pub(super) fn join(&self, account: Arc<str>, owner: Option<Arc<str>>) -> Member {
        let mut inner = self.inner.lock();
        inner.accounts.push(account);
        Member {
            account: inner.accounts.len() - 1,
            principal: inner.principal(owner),
        }
    }

    /// `member` remembers a new id, in its slot at `pos`: the node to give
    /// back to [`IdBudget::removed`] when it forgets it.
    pub(super) fn added(&self, member: Member, pos: u64) -> u32 {
        let mut inner = self.inner.lock();
        let Some(node) = inner.alloc(member.account, pos) else {
            return NO_NODE;
        };
        inner.link_tail(member.principal, node);
        self.remembered.fetch_add(1, Ordering::Relaxed);
        node
    }

    /// `member` forgot the id of `node` (its own retention, an undo, or [`IdBudget::trim`]).
    pub(super) fn removed(&self, member: Member, node: u32) {
        if node == NO_NODE {
            return;
        }
        let mut inner = self.inner.lock();
        inner.unlink(member.principal, node);
        inner.release(node);
        self.remembered.fetch_sub(1, Ordering::Relaxed);
    }

    /// The id of `node` is still in use (a waiting op): it goes to the back
    /// of its principal's order, as if it had just come.
    pub(super) fn requeue(&self, member: Member, node: u32) {
        if node == NO_NODE {
            return;
        }
        let mut inner = self.inner.lock();
        inner.unlink(member.principal, node);
        inner.link_tail(member.principal, node);
    }

    /// The id of `node` moved to the slot at `pos` of its log.
    pub(super) fn moved(&self, node: u32, pos: u64) {
        if let Some(n) = self.inner.lock().nodes.get_mut(node as usize) {
            n.pos = pos;
        }
    }

    /// Whether more than the cap are remembered (so ids must be forgotten).
    pub(super) fn over(&self) -> bool {
        self.remembered() > self.cap
    }

    /// While more than the cap are remembered, asks `forget` to forget the
    /// oldest id of the principal that remembers the most: `forget(account,
    /// pos)` tries the account's lock; `None` when it is busy (stop; a
    /// later call tries again), else it has forgotten the id (whose log
    /// calls [`IdBudget::removed`]) or, for a waiting op's id, requeued it.
    /// Each id is tried once at most per call.
    pub(super) fn trim(&self, mut forget: impl FnMut(&Arc<str>, u64) -> Option<bool>) {
        let mut attempts = self.remembered();
        while attempts > 0 && self.over() {
            attempts -= 1;
            let Some((account, pos)) = self.oldest_of_largest() else {
                return;
            };
            if forget(&account, pos).is_none() {
                return;
            }
        }
    }

    /// The account and slot position of the oldest id of the principal that
    /// remembers the most.
    fn oldest_of_largest(&self) -> Option<(Arc<str>, u64)> {
        let inner = self.inner.lock();
        let &largest = inner.ranked.last()?;
        let node = inner.nodes.get(inner.principals[largest].head as usize)?;
        Some((Arc::clone(&inner.accounts[node.account]), node.pos))
    }
}

impl Inner {
    /// The index of `owner`'s principal, made (remembering nothing) if new.
    fn principal(&mut self, owner: Option<Arc<str>>) -> usize {
        if let Some(&p) = self.by_owner.get(&owner) {
            return p;
        }
        let p = self.principals.len();
        self.principals.push(Principal {
            owner: owner.clone(),
            head: NO_NODE,
            tail: NO_NODE,
            count: 0,
            rank: 0,
        });
        // Nobody remembers fewer than none: it goes first.
        self.ranked.insert(0, p);
        for (rank, &q) in self.ranked.iter().enumerate() {
            self.principals[q].rank = rank;
        }
        self.by_owner.insert(owner, p);
        p
    }

    /// A node for the id at `pos` of `account`: a freed one, or a new one.
    fn alloc(&mut self, account: usize, pos: u64) -> Option<u32> {
        let node = Node {
            account,
            pos,
            prev: NO_NODE,
            next: NO_NODE,
        };
        if self.free != NO_NODE {
            let index = self.free;
            self.free = self.nodes[index as usize].next;
            self.nodes[index as usize] = node;
            return Some(index);
        }
        let index = u32::try_from(self.nodes.len()).ok().filter(|&i| i != NO_NODE)?;
        self.nodes.push(node);
        Some(index)
    }

    fn release(&mut self, node: u32) {
        self.nodes[node as usize].next = self.free;
        self.free = node;
    }

    fn link_tail(&mut self, p: usize, node: u32) {
        let tail = self.principals[p].tail;
        self.nodes[node as usize].prev = tail;
        self.nodes[node as usize].next = NO_NODE;
        match tail {
            NO_NODE => self.principals[p].head = node,
            tail => self.nodes[tail as usize].next = node,
        }
        self.principals[p].tail = node;
        self.raise(p);
    }

    fn unlink(&mut self, p: usize, node: u32) {
        let Node { prev, next, .. } = self.nodes[node as usize];
        match prev {
            NO_NODE => self.principals[p].head = next,
            prev => self.nodes[prev as usize].next = next,
        }
        match next {
            NO_NODE => self.principals[p].tail = prev,
            next => self.nodes[next as usize].prev = prev,
        }
        self.lower(p);
    }

    /// `p`'s count goes up by one: it swaps places with the last principal
    /// of its count first, so `ranked` stays sorted.
    fn raise(&mut self, p: usize) {
        let count = self.principals[p].count;
        let last = self
            .ranked
            .partition_point(|&q| self.principals[q].count <= count)
            - 1;
        self.swap_ranks(self.principals[p].rank, last);
        self.principals[p].count += 1;
    }

    /// `p`'s count goes down by one (the mirror of [`Inner::raise`]).
    fn lower(&mut self, p: usize) {
        let count = self.principals[p].count;
        let first = self.ranked.partition_point(|&q| self.principals[q].count < count);
        self.swap_ranks(self.principals[p].rank, first);
        self.principals[p].count = count.saturating_sub(1);
    }

    fn swap_ranks(&mut self, a: usize, b: usize) {
        self.ranked.swap(a, b);
        let (pa, pb) = (self.ranked[a], self.ranked[b]);
        self.principals[pa].rank = a;
        self.principals[pb].rank = b;
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::ledger::{CallContext, Deposit, Ledger, LedgerConfig, LedgerError};

    fn deposit(l: &Ledger, account: &str, rid: &str) {
        let d = Deposit {
            account_id: account.into(),
            amount: 1,
            request_id: rid.into(),
        };
        l.deposit(&l.account(account).unwrap(), &d, &CallContext::detached())
            .unwrap();
    }

    fn ledger(max_request_ids: usize) -> Ledger {
        Ledger::new(LedgerConfig {
            max_request_ids,
            processing_delay: std::time::Duration::ZERO,
            ..LedgerConfig::default()
        })
    }

    #[test]
    fn with_one_principal_the_oldest_ids_server_wide_are_forgotten_past_the_cap() {
        let l = ledger(4);
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

    #[test]
    fn another_principals_fences_never_make_an_id_forgotten() {
        let l = ledger(10);
        l.open_owned("alice-acc", 1_000, Some("alice")).unwrap();
        l.open_owned("bob-acc", 0, Some("bob")).unwrap();
        deposit(&l, "alice-acc", "pay-rent");
        let bob = l.account("bob-acc").unwrap();
        for i in 0..100 {
            // Once bob's account forgot one, an unseen id is FAILED_PRECONDITION
            // (it may be one of those); fenced all the same.
            let _ = l.operation(&bob, &format!("unseen-{i}"));
            assert!(l.remembered_request_ids() <= 10);
        }
        let rent = l.operation(&l.account("alice-acc").unwrap(), "pay-rent").unwrap();
        assert!(rent.replayed, "{rent:?}");
        let shares = l.ids.shares();
        assert!(shares.contains(&(Some("alice".into()), 1)), "{shares:?}");
        assert!(shares.contains(&(Some("bob".into()), 9)), "{shares:?}");
    }
}
