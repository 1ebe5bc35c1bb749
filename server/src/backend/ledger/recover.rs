//! Rebuilding a ledger from storage, and taking the snapshot that bounds the
//! journal. Replay checks every record against the state it lands on (the
//! next sequence number, the arithmetic of the balance): a record that does
//! not fit means damaged data, and recovery refuses rather than guess.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::account::Account;
use super::config::LedgerConfig;
use super::op::{Fingerprint, OpKind, OpResult, Outcome};
use super::state::State;
use super::storage::{Record, Stored};
use super::Ledger;

/// How often the snapshotter asks storage whether a snapshot is due.
pub const SNAPSHOT_CHECK_INTERVAL: Duration = Duration::from_secs(1);

impl Ledger {
    /// A ledger rebuilt from a snapshot's records and then a journal's, or
    /// why they do not fit together (naming the record).
    pub fn recover(config: LedgerConfig, snapshot: &[Record], journal: &[Record]) -> Result<Ledger, String> {
        let ledger = Ledger::new(config);
        for (i, record) in snapshot.iter().enumerate() {
            ledger
                .restore(record)
                .map_err(|e| format!("snapshot record {i}: {e}"))?;
        }
        for (i, record) in journal.iter().enumerate() {
            ledger
                .replay(record)
                .map_err(|e| format!("journal record {i}: {e}"))?;
        }
        ledger.trim_request_ids();
        Ok(ledger)
    }

    fn insert(&self, id: &Arc<str>, balance: u64, owner: &Option<Arc<str>>) -> Result<Arc<Account>, String> {
        let mut accounts = self.accounts.write();
        if accounts.contains_key(id) {
            return Err(format!("account {id:?} opened twice"));
        }
        let ids = Arc::clone(&self.ids);
        let account = Arc::new(Account::new(
            Arc::clone(id),
            balance,
            owner.clone(),
            &self.config,
            ids,
        ));
        accounts.insert(Arc::clone(id), Arc::clone(&account));
        // A recovered account counts for its owner's quota (never refused here).
        let _ = self.own(owner.as_ref(), false);
        Ok(account)
    }

    fn existing(&self, id: &str) -> Result<Arc<Account>, String> {
        let account = self.accounts.read().get(id).cloned();
        account.ok_or_else(|| format!("a record for account {id:?}, which was never opened"))
    }

    /// One snapshot record: an account's state, or one of its remembered ids.
    fn restore(&self, record: &Record) -> Result<(), String> {
        match record {
            Record::State {
                account,
                balance,
                sequence,
                forgotten,
                owner,
            } => {
                let a = self.insert(account, *balance, owner)?;
                let mut st = a.lock();
                st.sequence = *sequence;
                st.log.restore_forgotten(*forgotten);
            }
            Record::Op { account, .. } => {
                let (fp, result) = op_parts(record).ok_or("an op record without an op")?;
                self.existing(account)?.lock().log.record(&fp, &result);
            }
            Record::Fence { account, request_id } => {
                let _ = self.existing(account)?.lock().log.fence(request_id);
            }
            Record::Open { .. } => return Err("an open record inside a snapshot".into()),
        }
        Ok(())
    }

    /// One journal record, applied as the live op applied it.
    fn replay(&self, record: &Record) -> Result<(), String> {
        match record {
            Record::Open {
                account,
                balance,
                owner,
            } => drop(self.insert(account, *balance, owner)?),
            Record::Op { account, .. } => {
                let (fp, result) = op_parts(record).ok_or("an op record without an op")?;
                self.replay_op(account, &fp, &result)?;
            }
            Record::Fence { account, request_id } => {
                let _ = self.existing(account)?.lock().log.fence(request_id);
            }
            Record::State { .. } => return Err("a snapshot record inside the journal".into()),
        }
        Ok(())
    }

    fn replay_op(&self, account: &str, fp: &Fingerprint, result: &OpResult) -> Result<(), String> {
        let from = self.existing(account)?;
        if result.outcome == Outcome::NotApplied {
            from.lock().log.record(fp, result);
            return Ok(());
        }
        match &fp.kind {
            OpKind::TransferTo(to) => {
                let to = self.existing(to)?;
                let (mut src, mut dst) = (from.lock(), to.lock());
                check_transfer(&src, &dst, fp.amount, result)?;
                super::apply_transfer(&mut src, &mut dst, result);
                src.log.record(fp, result);
            }
            kind => {
                let mut st = from.lock();
                st.balance = single_balance(&st, kind, fp.amount, result)?;
                st.next_sequence();
                st.log.record(fp, result);
            }
        }
        Ok(())
    }

    /// Takes a snapshot if storage wants one; the accounts stay locked for
    /// the snapshot's write, so no commit can slip between read and switch.
    pub fn snapshot_if_due(&self) -> Result<bool, String> {
        let storage = &self.config.storage.0;
        if !storage.wants_snapshot() {
            return Ok(false);
        }
        let opening = self.opening.lock();
        if !opening.is_empty() {
            return Ok(false);
        }
        let mut accounts: Vec<Arc<Account>> = self.accounts.read().values().cloned().collect();
        accounts.sort_by(|a, b| a.id().cmp(b.id()));
        let mut guards: Vec<_> = accounts.iter().map(|a| a.lock()).collect();
        // A snapshot holds synced state only: what is in flight lands first.
        guards.iter_mut().for_each(|st| st.wait_unsynced());
        let mut records = Vec::new();
        for (account, st) in accounts.iter().zip(&guards) {
            state_records(account, st, &mut records);
        }
        storage.snapshot(&records).map_err(|e| e.0)?;
        drop((guards, opening));
        Ok(true)
    }
}

fn state_records(account: &Account, st: &State, out: &mut Vec<Record>) {
    let id = account.id();
    out.push(Record::State {
        account: Arc::clone(id),
        balance: st.balance,
        sequence: st.sequence,
        forgotten: st.log.forgotten(),
        owner: account.owner().cloned(),
    });
    st.log.export(id, out);
}

/// Starts a thread that snapshots `ledger` whenever its storage asks, for
/// as long as the ledger lives. Nothing to do for a ledger in memory.
pub fn spawn_snapshotter(ledger: &Arc<Ledger>) {
    if !ledger.config.storage.is_durable() {
        return;
    }
    let weak: Weak<Ledger> = Arc::downgrade(ledger);
    let spawned = std::thread::Builder::new()
        .name("snapshotter".into())
        .spawn(move || loop {
            std::thread::sleep(SNAPSHOT_CHECK_INTERVAL);
            let Some(ledger) = weak.upgrade() else { return };
            match ledger.snapshot_if_due() {
                Ok(true) => tracing::info!("snapshot written; the journal starts over"),
                Ok(false) => {}
                Err(e) => tracing::warn!("snapshot skipped: {e}"),
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("no snapshotter thread ({e}): the journal will not be compacted");
    }
}

/// The fingerprint and stored result an op record carries, as the live op
/// remembered them (`None` for any other record).
fn op_parts(record: &Record) -> Option<(Fingerprint, OpResult)> {
    let Record::Op {
        request_id,
        kind,
        amount,
        result,
        ..
    } = record
    else {
        return None;
    };
    let fp = Fingerprint {
        kind: kind.clone(),
        amount: *amount,
    };
    Some((fp, op_result(request_id, result)))
}

fn op_result(request_id: &str, stored: &Stored) -> OpResult {
    OpResult {
        request_id: request_id.to_owned(),
        outcome: stored.outcome,
        balance: stored.balance,
        sequence: stored.sequence,
        replayed: false,
        to_balance: stored.to_balance,
        to_sequence: stored.to_sequence,
    }
}

fn check_sequence(st: &State, sequence: u64, which: &str) -> Result<(), String> {
    if sequence != st.peek_sequence() {
        return Err(format!(
            "{which} sequence {sequence} where {} was next",
            st.peek_sequence()
        ));
    }
    Ok(())
}

/// The balance a deposit or withdrawal leaves, checked against the record.
fn single_balance(st: &State, kind: &OpKind, amount: u64, r: &OpResult) -> Result<u64, String> {
    check_sequence(st, r.sequence, "a")?;
    let expected = match (kind, r.outcome) {
        (OpKind::Deposit, Outcome::Approved) => st.balance.checked_add(amount),
        (OpKind::Withdraw, Outcome::Approved) => st.balance.checked_sub(amount),
        (OpKind::Withdraw, Outcome::InsufficientFunds) if st.balance < amount => Some(st.balance),
        _ => None,
    };
    match expected {
        Some(balance) if balance == r.balance => Ok(balance),
        _ => Err(format!(
            "{kind:?} of {amount} on {} recorded as {:?} leaving {}",
            st.balance, r.outcome, r.balance
        )),
    }
}

fn check_transfer(src: &State, dst: &State, amount: u64, r: &OpResult) -> Result<(), String> {
    check_sequence(src, r.sequence, "a source")?;
    check_sequence(dst, r.to_sequence, "a target")?;
    let expected = match r.outcome {
        Outcome::Approved => src
            .balance
            .checked_sub(amount)
            .zip(dst.balance.checked_add(amount)),
        _ if src.balance < amount => Some((src.balance, dst.balance)),
        _ => None,
    };
    if expected != Some((r.balance, r.to_balance)) {
        return Err(format!(
            "a transfer of {amount} from {} to {} recorded as {:?}",
            src.balance, dst.balance, r.outcome
        ));
    }
    Ok(())
}
