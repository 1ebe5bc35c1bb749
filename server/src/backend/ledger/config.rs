//! The ledger's knobs and limits, each named with its unit and documented in
//! the README. The CLI fills them; tests build them directly.

use std::time::Duration;

use super::bug::InjectedBug;
use super::observer::Observer;
use super::storage::StorageHandle;

/// Everything that shapes the ledger's behaviour and bounds its memory.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// Simulated processing time slept inside the critical section.
    pub processing_delay: Duration,
    /// Serve withdrawals without holding the lock across the delay (race demo).
    pub unsafe_no_lock: bool,
    /// A bug of the zoo to plant on purpose (`--inject-bug`); `None` normally.
    pub inject_bug: InjectedBug,
    /// Accounts the server will open at most.
    pub max_accounts: usize,
    /// Accounts one principal (an account's owner, with `--auth-tokens`)
    /// may hold at most; at most `max_accounts`. Ownerless accounts (no
    /// tokens: one principal) are bounded by `max_accounts` alone.
    pub max_accounts_per_principal: usize,
    /// Request ids remembered per account before the oldest is forgotten.
    pub request_id_retention: usize,
    /// Request ids remembered over all accounts; past it the oldest server-wide is forgotten.
    pub max_request_ids: usize,
    /// Withdrawals that may wait for funds on one account at once.
    pub max_waiters_per_account: usize,
    /// Withdrawals that may wait for funds at once over the accounts of one
    /// principal (their owner; all ownerless accounts count as one).
    pub max_waiters_per_principal: usize,
    /// Withdrawals that may wait for funds at once on the whole server.
    pub max_waiters: usize,
    /// The longest a withdrawal waits for funds, whatever its deadline.
    pub max_wait: Duration,
    /// Ops of one account that may hold a blocking thread at once.
    pub max_blocking_per_account: usize,
    /// Ops of one account admitted at once (waiting at the gate or running).
    pub max_queued_per_account: usize,
    /// Deposits and withdrawals an account's runner applies in one batch
    /// (one lock hold, one processing delay, one sync); 1 = one at a time.
    pub batch_max: usize,
    /// Who hears about lock waits and holds (and syncs); nobody by default.
    pub observer: Observer,
    /// Where changes go before they are acknowledged (memory by default;
    /// a journal with `--data-dir`).
    pub storage: StorageHandle,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            processing_delay: Duration::from_millis(1),
            unsafe_no_lock: false,
            inject_bug: InjectedBug::None,
            max_accounts: 100_000,
            max_accounts_per_principal: 10_000,
            request_id_retention: 100_000,
            max_request_ids: 5_000_000,
            max_waiters_per_account: 64,
            max_waiters_per_principal: 1_000,
            max_waiters: 10_000,
            max_wait: Duration::from_secs(30),
            max_blocking_per_account: 2,
            max_queued_per_account: 10_000,
            batch_max: 1,
            observer: Observer::default(),
            storage: StorageHandle::default(),
        }
    }
}

impl LedgerConfig {
    /// Whether withdrawals skip the lock across the delay: `unsafe_no_lock`,
    /// or the zoo's `lost-update`, which is the same bug under its zoo name.
    pub fn racy_withdrawals(&self) -> bool {
        self.unsafe_no_lock || self.inject_bug == InjectedBug::LostUpdate
    }
}
