//! Waking withdrawals that wait for funds, across servers, without polling.
//! The database announces every credit: a trigger (schema version 2) runs
//! `pg_notify('bank_funds', id)` when an account's balance grows, delivered
//! when the crediting transaction commits, to every server that listens. Each
//! server listens on one dedicated connection (a thread of its own, not a
//! pooled connection) and wakes the waiters of that account here; they try
//! again at once. While the listener is not connected (a lost connection, a
//! restart of the database) nothing is heard, so on every (re)connect every
//! waiter is woken to look again; as a last guard a waiter also looks again
//! every [`RECHECK`].
//!
//! The waiter limits are counted here, per server (the waiters are this
//! process's threads): `--max-waiters-per-account`, `--max-waiters-per-principal`
//! and `--max-waiters`, refused with memory's messages.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use postgres::fallible_iterator::FallibleIterator;

use crate::backend::ledger::{LedgerConfig, LedgerError, LedgerResult};

/// The channel the trigger notifies on; the payload is the account id.
pub const FUNDS_CHANNEL: &str = "bank_funds";
/// The longest a waiter sleeps without looking at the balance again.
pub const RECHECK: Duration = Duration::from_secs(1);
/// How long the listener waits for a notification before it checks that
/// its ledger still exists.
const LISTEN_SLICE: Duration = Duration::from_millis(250);
/// The pause before the listener reconnects after losing its connection.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// One account's wake-up signal: a counter bumped by each credit.
#[derive(Debug, Default)]
struct Signal {
    credits: Mutex<u64>,
    woken: Condvar,
    /// Waiters enrolled on the account (counted against the limits).
    waiters: Mutex<usize>,
}

/// The signals of the accounts someone waits on, and the waiter counts.
#[derive(Debug, Default)]
pub struct Funds {
    signals: Mutex<HashMap<Arc<str>, Arc<Signal>>>,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_principal: HashMap<Option<Arc<str>>, usize>,
}

/// A withdrawal's hold on its account's signal; enrolled (counted) once it waits.
pub struct Watch<'a> {
    funds: &'a Funds,
    id: Arc<str>,
    signal: Arc<Signal>,
    enrolled: Option<Option<Arc<str>>>,
}

impl Funds {
    /// Watches `id` (before the first look at its balance, so no credit is missed).
    pub fn watch(&self, id: &str) -> Watch<'_> {
        let mut signals = self.signals.lock();
        let signal = signals.entry(Arc::from(id)).or_default();
        Watch {
            funds: self,
            id: Arc::from(id),
            signal: Arc::clone(signal),
            enrolled: None,
        }
    }

    /// Wakes the waiters of `id` (a credit was committed).
    pub fn wake(&self, id: &str) {
        let signal = self.signals.lock().get(id).cloned();
        if let Some(signal) = signal {
            signal.bump();
        }
    }

    /// Wakes every waiter (notifications may have been missed).
    pub fn wake_all(&self) {
        let signals: Vec<_> = self.signals.lock().values().cloned().collect();
        signals.iter().for_each(|s| s.bump());
    }

    /// Waiters enrolled now, on this server.
    pub fn waiting(&self) -> usize {
        self.counts.lock().total
    }
}

impl Signal {
    fn bump(&self) {
        *self.credits.lock() += 1;
        self.woken.notify_all();
    }
}

impl Watch<'_> {
    /// The credits seen so far: pass it to [`Watch::wait`] after a look at the balance.
    pub fn seen(&self) -> u64 {
        *self.signal.credits.lock()
    }

    /// Counts this withdrawal as waiting (once), or refuses when a limit is full.
    pub fn enroll(&mut self, owner: Option<&Arc<str>>, config: &LedgerConfig) -> LedgerResult<()> {
        if self.enrolled.is_some() {
            return Ok(());
        }
        let mut on_account = self.signal.waiters.lock();
        if *on_account >= config.max_waiters_per_account {
            return Err(LedgerError::LimitReached(format!(
                "{on_account} withdrawals are already waiting for funds on this account (max_waiters_per_account)"
            )));
        }
        self.funds.count_in(owner, config)?;
        *on_account += 1;
        self.enrolled = Some(owner.cloned());
        Ok(())
    }

    /// Whether this withdrawal is counted as waiting.
    pub fn enrolled(&self) -> bool {
        self.enrolled.is_some()
    }

    /// Sleeps until a credit after `seen`, `until`, or [`RECHECK`], whichever is first.
    pub fn wait(&self, seen: u64, until: Instant) {
        let until = until.min(Instant::now() + RECHECK);
        let mut credits = self.signal.credits.lock();
        while *credits == seen {
            if self.signal.woken.wait_until(&mut credits, until).timed_out() {
                return;
            }
        }
    }
}

impl Funds {
    fn count_in(&self, owner: Option<&Arc<str>>, config: &LedgerConfig) -> LedgerResult<()> {
        let mut counts = self.counts.lock();
        if counts.total >= config.max_waiters {
            return Err(LedgerError::LimitReached(format!(
                "{} withdrawals are already waiting for funds on this server (max_waiters)",
                counts.total
            )));
        }
        let held = counts.per_principal.get(&owner.cloned()).copied().unwrap_or(0);
        if held >= config.max_waiters_per_principal {
            let who = owner.map_or("the ownerless accounts".to_owned(), |o| {
                format!("principal {o:?}")
            });
            return Err(LedgerError::LimitReached(format!(
                "{who} already has {held} withdrawals waiting for funds (max_waiters_per_principal)"
            )));
        }
        counts.total += 1;
        *counts.per_principal.entry(owner.cloned()).or_insert(0) += 1;
        Ok(())
    }

    fn count_out(&self, owner: &Option<Arc<str>>) {
        let mut counts = self.counts.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(held) = counts.per_principal.get_mut(owner) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                counts.per_principal.remove(owner);
            }
        }
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        if let Some(owner) = self.enrolled.take() {
            *self.signal.waiters.lock() -= 1;
            self.funds.count_out(&owner);
        }
        let mut signals = self.funds.signals.lock();
        // The map's copy and ours: nobody else watches, so the entry goes.
        if Arc::strong_count(&self.signal) == 2 {
            signals.remove(&self.id);
        }
    }
}

/// Held by a waiting withdrawal's call (its future): dropped with the call
/// (client gone) while still armed, it marks the call abandoned and wakes the
/// account's waiters, so the withdrawal ends at once (NOT_APPLIED, and its
/// registration for the hand-off is overruled by that record) instead of at
/// its next wake-up, as memory ends a dropped waiter's wait at once.
pub struct WakeOnDrop {
    funds: Arc<Funds>,
    account: String,
    abandoned: Arc<std::sync::atomic::AtomicBool>,
    armed: bool,
}

impl WakeOnDrop {
    pub fn new(funds: Arc<Funds>, account: String, abandoned: Arc<std::sync::atomic::AtomicBool>) -> Self {
        WakeOnDrop {
            funds,
            account,
            abandoned,
            armed: true,
        }
    }

    /// The call got its answer: nothing to do on drop.
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.abandoned.store(true, std::sync::atomic::Ordering::Release);
            self.funds.wake(&self.account);
        }
    }
}

/// Starts the listener thread for `funds`; it ends once `funds` is dropped.
pub fn listen(config: postgres::Config, funds: &Arc<Funds>) {
    let funds = Arc::downgrade(funds);
    let spawned = std::thread::Builder::new()
        .name("bank-pg-listen".into())
        .spawn(move || listener(&config, &funds));
    if let Err(e) = spawned {
        tracing::warn!("no listener for credits (waiters look again every {RECHECK:?}): {e}");
    }
}

fn listener(config: &postgres::Config, funds: &Weak<Funds>) {
    while funds.strong_count() > 0 {
        let mut client = match config.connect(postgres::NoTls) {
            Ok(client) => client,
            Err(_) => {
                std::thread::sleep(RECONNECT_PAUSE);
                continue;
            }
        };
        if client.batch_execute(&format!("LISTEN {FUNDS_CHANNEL}")).is_err() {
            std::thread::sleep(RECONNECT_PAUSE);
            continue;
        }
        // Credits committed while nobody listened were not heard: look again.
        if let Some(funds) = funds.upgrade() {
            funds.wake_all();
        }
        if hear(&mut client, funds).is_err() {
            tracing::debug!("the credits listener lost its connection; reconnecting");
        }
    }
}

/// Wakes the waiters of every credit heard, until the connection fails or
/// `funds` is gone.
fn hear(client: &mut postgres::Client, funds: &Weak<Funds>) -> Result<(), postgres::Error> {
    loop {
        {
            let mut notifications = client.notifications();
            let mut heard = notifications.timeout_iter(LISTEN_SLICE);
            while let Some(n) = heard.next()? {
                let Some(funds) = funds.upgrade() else {
                    return Ok(());
                };
                funds.wake(n.payload());
            }
        }
        if client.is_closed() {
            return client.batch_execute("SELECT 1");
        }
        if funds.strong_count() == 0 {
            return Ok(());
        }
    }
}
