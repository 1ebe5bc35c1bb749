//! The bug zoo: classic concurrency and contract bugs the server commits on
//! purpose when told to (`bank-server --inject-bug NAME`), so that the
//! stress-client's consistency verdict can be shown to catch each one.
//!
//! Nothing here runs unless [`LedgerConfig::inject_bug`] names a bug. The
//! ledger calls in through small hooks, each marked `// BUG (zoo): ...`; the
//! one bug that lives on the wire (`bad-outcome`) is in `crate::rpc::zoo`, and
//! `lost-update` is the seed's race (`LedgerConfig::racy_withdrawals`). The
//! bugs' names are in `bug`; the two-step transfer, which needs whole
//! accounts, in `zoo_transfer`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub use super::bug::InjectedBug;
use super::config::LedgerConfig;
use super::error::LedgerError;
use super::op::{Deposit, OpResult, Outcome, Snapshot, Withdrawal};
use super::state::State;

/// How long `stale-read` keeps answering an account's old balance.
pub const STALE_READ_LAG: Duration = Duration::from_millis(50);

/// `partial-apply` breaks one in this many eligible deposits/withdrawals.
pub const PARTIAL_APPLY_EVERY: u64 = 10;

/// The error a `partial-apply` op answers with (the service maps it to INTERNAL).
pub const PARTIAL_APPLY_MESSAGE: &str = "zoo: partial apply";

/// An account's own zoo state: empty and untouched unless a bug uses it.
#[derive(Debug, Default)]
pub(super) struct AccountZoo {
    /// `stale-read`: the snapshot GetBalance answers, and when it was taken.
    cached: Mutex<Option<(Instant, Snapshot)>>,
    /// `partial-apply`: eligible ops seen so far (a deterministic counter).
    eligible: AtomicU64,
}

impl AccountZoo {
    /// BUG (zoo): stale-read. The cached snapshot while it is younger than
    /// [`STALE_READ_LAG`], else a fresh one from `read` (which is cached).
    pub(super) fn stale_read(&self, read: impl FnOnce() -> Snapshot) -> Snapshot {
        // Lock order: this cache, then (inside `read`) the account; never the
        // other way round, so the two cannot deadlock.
        let mut cached = self.cached.lock();
        let now = Instant::now();
        match &*cached {
            Some((at, old)) if now.duration_since(*at) < STALE_READ_LAG => old.clone(),
            _ => {
                let fresh = read();
                *cached = Some((now, fresh.clone()));
                fresh
            }
        }
    }

    /// Whether this approved op of `amount` is the one in ten `partial-apply` breaks.
    fn partial_turn(&self, cfg: &LedgerConfig, amount: u64) -> bool {
        cfg.inject_bug == InjectedBug::PartialApply
            && amount >= 2
            && self.eligible.fetch_add(1, Ordering::Relaxed) % PARTIAL_APPLY_EVERY == PARTIAL_APPLY_EVERY - 1
    }

    /// BUG (zoo): partial-apply, for an approvable deposit: credits half,
    /// takes a sequence number, records nothing and fails. `None` otherwise.
    pub(super) fn partial_deposit(
        &self,
        cfg: &LedgerConfig,
        st: &mut State,
        d: &Deposit,
    ) -> Option<LedgerError> {
        if !self.partial_turn(cfg, d.amount) {
            return None;
        }
        // The caller checked that the whole amount fits; half of it does too.
        st.balance = st.balance.saturating_add(d.amount / 2);
        Some(half_applied(st, &d.request_id))
    }

    /// BUG (zoo): partial-apply, for a withdrawal the balance covers: debits
    /// half, takes a sequence number, records nothing and fails. `None` otherwise.
    pub(super) fn partial_withdrawal(
        &self,
        cfg: &LedgerConfig,
        st: &mut State,
        w: &Withdrawal,
    ) -> Option<LedgerError> {
        if st.balance < w.amount || !self.partial_turn(cfg, w.amount) {
            return None;
        }
        st.balance -= w.amount / 2;
        Some(half_applied(st, &w.request_id))
    }
}

/// The rest of a partial apply: the sequence number is taken, no result is
/// recorded (so `GetOperation` later fences the id and says NOT_APPLIED).
fn half_applied(st: &mut State, request_id: &str) -> LedgerError {
    st.next_sequence();
    // A withdrawal that waited for funds left its id waiting; a waiting id
    // would answer "in progress" forever, so fence it as `GetOperation` would.
    if matches!(st.log.get(request_id), Err(LedgerError::InProgress(_))) {
        st.log.fence(request_id);
    }
    LedgerError::Internal(PARTIAL_APPLY_MESSAGE.into())
}

/// BUG (zoo): double-apply-retry. A replayed APPROVED deposit is credited
/// again (a new sequence number), unless the credit would overflow.
pub(super) fn reapply_deposit(cfg: &LedgerConfig, replay: &OpResult, st: &mut State, amount: u64) {
    if !reapplies(cfg, replay) {
        return;
    }
    if let Some(balance) = st.balance.checked_add(amount) {
        st.balance = balance;
        st.next_sequence();
    }
}

/// BUG (zoo): double-apply-retry. A replayed APPROVED withdrawal is debited
/// again (a new sequence number) if the funds suffice, else silently skipped.
pub(super) fn reapply_withdrawal(cfg: &LedgerConfig, replay: &OpResult, st: &mut State, amount: u64) {
    if !reapplies(cfg, replay) {
        return;
    }
    if let Some(left) = st.balance.checked_sub(amount) {
        st.balance = left;
        st.next_sequence();
    }
}

/// BUG (zoo): double-apply-retry. A replayed APPROVED transfer moves the
/// money again (a new sequence number on both) if it can, else nothing.
pub(super) fn reapply_transfer(
    cfg: &LedgerConfig,
    replay: &OpResult,
    src: &mut State,
    dst: &mut State,
    amount: u64,
) {
    if !reapplies(cfg, replay) {
        return;
    }
    let (Some(left), Some(credited)) = (src.balance.checked_sub(amount), dst.balance.checked_add(amount))
    else {
        return;
    };
    src.balance = left;
    dst.balance = credited;
    src.next_sequence();
    dst.next_sequence();
}

fn reapplies(cfg: &LedgerConfig, replay: &OpResult) -> bool {
    cfg.inject_bug == InjectedBug::DoubleApplyRetry && replay.outcome == Outcome::Approved
}
