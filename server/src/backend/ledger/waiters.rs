//! Withdrawals waiting for funds, as wakers instead of threads. A withdrawal
//! that finds too little money (and may wait) registers a [`Waiter`] under
//! its account's lock and gives the lock back; the caller then awaits the
//! waiter as a future (or, on a thread that may block, sleeps on it). A
//! deposit or transfer that adds funds wakes, under the lock, exactly the
//! waiters the new balance can serve (first fit, oldest first); each one
//! woken re-checks under the lock, as a monitor's condition does.
//!
//! Waiters are bounded three ways: per account (under its lock), per
//! principal (the account's owner; without tokens every account has none,
//! so they share one count) and in total. The counts live in [`Waiters`]
//! (atomics and a small map), taken when a waiter registers and given back
//! by its [`Permit`]'s drop, whatever ends the wait. A registration beyond a
//! limit is refused at once and changes nothing.
//!
//! Plain std wakers only, as in `storage::ticket`: the ledger stays free of
//! any runtime.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::context::CallContext;
use super::error::{LedgerError, LedgerResult};
use super::op::OpResult;
use super::pending::Pending;

/// What one try of a withdrawal that may wait for funds came to.
#[derive(Debug)]
pub enum WaitAttempt {
    /// Answered (approved, denied, abandoned, replayed).
    Done(Pending<OpResult>),
    /// It would have blocked on a context that may not; nothing changed.
    WouldBlock,
    /// Funds are short: registered to wait, its request id pending and its
    /// admission given back. Await the waiter, then resume it.
    Wait(Waiter),
}

/// How often a waiter sleeping on a thread looks whether its call was
/// abandoned (the async path needs no polling: a dropped call drops it).
const BLOCKED_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The server-wide counts and limits of waiting withdrawals.
#[derive(Debug)]
pub struct Waiters {
    max_total: usize,
    max_per_principal: usize,
    total: AtomicUsize,
    /// Waiters per principal (`None`: accounts without an owner); an entry
    /// goes when its count reaches zero, so the map holds only live ones.
    per_principal: Mutex<HashMap<Option<Arc<str>>, usize>>,
}

impl Waiters {
    /// Counts bounded by `max_total` in all and `max_per_principal` each.
    pub fn new(max_total: usize, max_per_principal: usize) -> Self {
        Waiters {
            max_total,
            max_per_principal,
            total: AtomicUsize::new(0),
            per_principal: Mutex::default(),
        }
    }

    /// Withdrawals waiting for funds now, over all accounts.
    pub fn waiting(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// Counts one more waiter of `principal`, or refuses (changing nothing)
    /// when the total or the principal's share is full.
    fn admit(self: &Arc<Self>, principal: Option<&Arc<str>>) -> LedgerResult<Permit> {
        let before = self.total.fetch_add(1, Ordering::AcqRel);
        if before >= self.max_total {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(LedgerError::LimitReached(format!(
                "{before} withdrawals are already waiting for funds on this server (max_waiters)"
            )));
        }
        let mut map = self.per_principal.lock();
        let count = map.entry(principal.cloned()).or_insert(0);
        if *count >= self.max_per_principal {
            let held = *count;
            drop(map);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(LedgerError::LimitReached(format!(
                "{} already has {held} withdrawals waiting for funds (max_waiters_per_principal)",
                principal_name(principal)
            )));
        }
        *count += 1;
        Ok(Permit {
            waiters: Arc::clone(self),
            principal: principal.cloned(),
        })
    }

    fn release(&self, principal: &Option<Arc<str>>) {
        let mut map = self.per_principal.lock();
        if let Some(count) = map.get_mut(principal) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                map.remove(principal);
            }
        }
        drop(map);
        self.total.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Default for Waiters {
    fn default() -> Self {
        let c = super::LedgerConfig::default();
        Waiters::new(c.max_waiters, c.max_waiters_per_principal)
    }
}

fn principal_name(principal: Option<&Arc<str>>) -> String {
    match principal {
        Some(p) => format!("principal {p:?}"),
        None => "the server's one principal (no --auth-tokens)".into(),
    }
}

/// One waiter's place in the counts, given back when dropped.
#[derive(Debug)]
struct Permit {
    waiters: Arc<Waiters>,
    principal: Option<Arc<str>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.waiters.release(&self.principal);
    }
}

/// What the account and the waiter share: whether it was woken, whether
/// the waiter is gone, and how to wake it.
#[derive(Debug, Default)]
struct Signal {
    state: Mutex<SignalState>,
    blocked: Condvar,
}

#[derive(Debug, Default)]
struct SignalState {
    /// Woken and not yet re-checked: its amount is spoken for.
    woken: bool,
    /// The waiter was dropped: its entry is skipped and pruned.
    gone: bool,
    waker: Option<Waker>,
}

impl Signal {
    fn wake(&self) {
        let waker = {
            let mut st = self.state.lock();
            st.woken = true;
            st.waker.take()
        };
        self.blocked.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn woken(&self) -> bool {
        self.state.lock().woken
    }

    fn gone(&self) -> bool {
        self.state.lock().gone
    }
}

/// One registered waiter as its account keeps it (under the account's lock).
#[derive(Debug)]
struct Entry {
    id: u64,
    amount: u64,
    signal: Arc<Signal>,
}

/// An account's waiters, oldest first (the account's lock guards it).
#[derive(Debug, Default)]
pub(super) struct WaitList {
    entries: Vec<Entry>,
    next_id: u64,
    /// Waiters woken by added funds here since the account opened.
    wakeups: u64,
}

impl WaitList {
    /// Registers a waiter for `amount` that may wait until `until`, within
    /// `max_per_account` here and the server-wide `waiters` for `principal`;
    /// refused (nothing changed) beyond any of them.
    pub(super) fn register(
        &mut self,
        amount: u64,
        until: Instant,
        (max_per_account, account_id): (usize, &str),
        waiters: &Arc<Waiters>,
        principal: Option<&Arc<str>>,
    ) -> LedgerResult<Waiter> {
        self.prune();
        if self.entries.len() >= max_per_account {
            return Err(LedgerError::LimitReached(format!(
                "account {account_id:?} already has {} withdrawals waiting for funds (max_waiters_per_account)",
                self.entries.len()
            )));
        }
        let permit = waiters.admit(principal)?;
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let signal = Arc::new(Signal::default());
        self.entries.push(Entry {
            id,
            amount,
            signal: Arc::clone(&signal),
        });
        Ok(Waiter {
            id,
            until,
            signal,
            _permit: permit,
        })
    }

    /// Waiters registered here and not gone.
    pub(super) fn len(&self) -> usize {
        self.entries.iter().filter(|e| !e.signal.gone()).count()
    }

    /// Waiters woken by added funds here so far.
    pub(super) fn wakeups(&self) -> u64 {
        self.wakeups
    }

    /// Removes `waiter`'s entry (it is done waiting).
    pub(super) fn remove(&mut self, waiter: &Waiter) {
        self.entries.retain(|e| e.id != waiter.id);
    }

    /// Puts a woken `waiter` back to sleep in its place (funds still short).
    pub(super) fn rearm(&self, waiter: &Waiter) {
        waiter.signal.state.lock().woken = false;
    }

    /// Wakes, oldest first, each waiter that `balance` can serve once the
    /// amounts of those already woken are set aside; returns how many.
    pub(super) fn wake_served(&mut self, balance: u64) -> usize {
        if self.entries.is_empty() {
            return 0;
        }
        self.prune();
        let spoken: u64 = self
            .entries
            .iter()
            .filter(|e| e.signal.woken())
            .fold(0, |sum, e| sum.saturating_add(e.amount));
        let mut left = balance.saturating_sub(spoken);
        let mut woken = 0;
        for e in self.entries.iter().filter(|e| !e.signal.woken()) {
            if e.amount <= left {
                left -= e.amount;
                e.signal.wake();
                woken += 1;
            }
        }
        self.wakeups = self.wakeups.saturating_add(woken as u64);
        woken
    }

    /// Drops the entries of waiters that are gone.
    fn prune(&mut self) {
        self.entries.retain(|e| !e.signal.gone());
    }
}

/// A registered waiter: await [`Waiter::woken`] (or [`Waiter::block`] on a
/// thread that may block), then let the ledger re-check. Dropping it
/// deregisters it: its entry is skipped from then on and its counts are
/// given back at once.
#[derive(Debug)]
pub struct Waiter {
    id: u64,
    until: Instant,
    signal: Arc<Signal>,
    _permit: Permit,
}

impl Waiter {
    /// When the wait ends whatever happens: answer then (see
    /// [`CallContext::wait_until`]).
    pub fn until(&self) -> Instant {
        self.until
    }

    /// Whether funds came (it must re-check under the lock).
    pub fn is_woken(&self) -> bool {
        self.signal.woken()
    }

    /// A future that completes when the waiter is woken.
    pub fn woken(&self) -> Woken<'_> {
        Woken(&self.signal)
    }

    /// Sleeps this thread until woken, `until`, or the call is abandoned.
    pub fn block(&self, ctx: &CallContext) {
        let mut st = self.signal.state.lock();
        while !st.woken && !ctx.abandoned() {
            let now = Instant::now();
            if now >= self.until {
                return;
            }
            let wake_at = self.until.min(now + BLOCKED_POLL_INTERVAL);
            self.signal.blocked.wait_until(&mut st, wake_at);
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.signal.state.lock().gone = true;
    }
}

/// The future of [`Waiter::woken`].
#[derive(Debug)]
pub struct Woken<'a>(&'a Signal);

impl Future for Woken<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.0.state.lock();
        // Checked under the lock `wake` takes: no lost wake-up.
        if st.woken {
            return Poll::Ready(());
        }
        match &st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn limits_refuse_the_next_waiter_and_drops_give_the_room_back() {
        let w = Arc::new(Waiters::new(3, 2));
        let (alice, bob): (Arc<str>, Arc<str>) = ("alice".into(), "bob".into());
        let mut list = WaitList::default();
        let a1 = list.register(1, far(), (2, "a"), &w, Some(&alice)).unwrap();
        let _a2 = list.register(1, far(), (2, "a"), &w, Some(&alice)).unwrap();
        // Per account.
        let e = list.register(1, far(), (2, "a"), &w, Some(&bob)).unwrap_err();
        assert!(e.to_string().contains("max_waiters_per_account"), "{e}");
        // Per principal.
        let mut other = WaitList::default();
        let e = other.register(1, far(), (9, "b"), &w, Some(&alice)).unwrap_err();
        assert!(e.to_string().contains("max_waiters_per_principal"), "{e}");
        let _b1 = other.register(1, far(), (9, "b"), &w, Some(&bob)).unwrap();
        // In total.
        let e = other.register(1, far(), (9, "b"), &w, Some(&bob)).unwrap_err();
        assert!(e.to_string().contains("max_waiters)"), "{e}");
        assert_eq!(w.waiting(), 3);
        drop(a1);
        assert_eq!((w.waiting(), list.len()), (2, 1));
        let _a3 = list.register(1, far(), (2, "a"), &w, Some(&alice)).unwrap();
        assert_eq!(list.entries.len(), 2, "the dropped waiter's entry was pruned");
    }

    #[test]
    fn a_wake_serves_exactly_what_the_balance_covers() {
        let w = Arc::new(Waiters::new(100, 100));
        let mut list = WaitList::default();
        let ws: Vec<Waiter> = [30, 50, 10, 30]
            .iter()
            .map(|&amount| list.register(amount, far(), (9, "a"), &w, None).unwrap())
            .collect();
        // 45: the 30 fits, the 50 does not, the 10 does; the last 30 not.
        assert_eq!(list.wake_served(45), 2);
        let woken: Vec<bool> = ws.iter().map(Waiter::is_woken).collect();
        assert_eq!(woken, [true, false, true, false]);
        // The same balance again wakes nobody: 40 is spoken for.
        assert_eq!(list.wake_served(45), 0);
        // A woken waiter that goes away gives its share back.
        let mut ws = ws;
        let first = ws.remove(0);
        list.remove(&first);
        drop(first);
        assert_eq!(list.wake_served(45), 1, "the other 30 now fits");
        assert_eq!(list.wakeups(), 3);
    }

    #[test]
    fn a_woken_future_completes_and_a_blocked_thread_returns() {
        let w = Arc::new(Waiters::new(10, 10));
        let mut list = WaitList::default();
        let waiter = list.register(5, far(), (9, "a"), &w, None).unwrap();
        let mut fut = Box::pin(waiter.woken());
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        list.wake_served(5);
        assert!(fut.as_mut().poll(&mut cx).is_ready());
        waiter.block(&CallContext::detached());
    }
}
