//! Group commit on one account (`--batch-max N`): up to N queued deposits
//! and withdrawals (none that waits for funds) under one lock hold, one
//! processing delay and one storage commit. Each op is still decided alone,
//! in queue order, on the balance the one before it left, and takes its own
//! sequence number; the batch is decided on a scratch copy of the balance,
//! queued for storage as a whole, applied to memory (the state before it
//! kept until synced) and answered once its flush is synced. If the append
//! is refused none of it is applied; if the flush fails the account rolls
//! it back; either way every decided op answers UNAVAILABLE. Batching
//! changes throughput, never semantics.

use std::collections::HashSet;

use super::account::Account;
use super::context::CallContext;
use super::delay::processing_delay;
use super::error::{LedgerError, LedgerResult};
use super::op::{Deposit, Fingerprint, OpKind, OpResult, Outcome, Withdrawal};
use super::pending::Pending;
use super::request_log::Lookup;
use super::storage::{op_record, Record, Ticket};
use super::Ledger;

/// One op of a batch.
#[derive(Debug, Clone)]
pub enum BatchOp {
    Deposit(Deposit),
    /// Never one that may wait for funds: it would hold up the batch.
    Withdraw(Withdrawal),
}

impl BatchOp {
    fn request_id(&self) -> &str {
        match self {
            BatchOp::Deposit(d) => &d.request_id,
            BatchOp::Withdraw(w) => &w.request_id,
        }
    }

    fn fingerprint(&self) -> Fingerprint {
        match self {
            BatchOp::Deposit(d) => Fingerprint {
                kind: OpKind::Deposit,
                amount: d.amount,
            },
            BatchOp::Withdraw(w) => Fingerprint {
                kind: OpKind::Withdraw,
                amount: w.amount,
            },
        }
    }
}

/// What each op of a batch came to before the commit.
enum Decided {
    /// Answered without a change (a replay, a conflict, an overflow).
    Answered(LedgerResult<OpResult>),
    /// A change to commit: remembered under this fingerprint.
    Change(Fingerprint, OpResult),
    /// Its request id repeats an earlier op of this batch: run after it.
    Later,
}

/// The balance and sequence number as the batch has left them so far.
struct Scratch {
    balance: u64,
    sequence: u64,
}

impl Ledger {
    /// Runs `ops` on `account` as one batch (see the module doc); one answer
    /// per op, in order, each to give once its flush is synced. Runs on a
    /// thread that may block.
    pub fn run_batch(
        &self,
        account: &Account,
        ops: &mut [(BatchOp, CallContext)],
    ) -> Vec<LedgerResult<Pending<OpResult>>> {
        let mut st = account.lock();
        processing_delay(&self.config);
        let mut scratch = Scratch {
            balance: st.balance,
            sequence: st.sequence,
        };
        let mut ids = HashSet::new();
        let decided: Vec<Decided> = ops
            .iter()
            .map(|(op, ctx)| {
                let fresh = op.request_id().is_empty() || ids.insert(op.request_id().to_owned());
                if !fresh {
                    return Decided::Later;
                }
                decide(account, &st.log, &mut scratch, op, ctx)
            })
            .collect();
        let records = self.records(account, &decided);
        let appended = self.config.storage.append(&records, st.last_ticket().as_slice());
        if let Ok(ticket) = &appended {
            let before = (st.balance, st.sequence);
            st.balance = scratch.balance;
            st.sequence = scratch.sequence;
            let undos = decided.iter().filter_map(|d| match d {
                Decided::Change(fp, result) => Some(st.log.record(fp, result)),
                Decided::Answered(_) | Decided::Later => None,
            });
            let undos: Vec<_> = undos.collect();
            st.push_unsynced(ticket.clone(), before, undos);
        }
        // A replay answers once everything the account holds is synced.
        let replays = st.last_ticket().cloned();
        st.wake_waiters();
        drop(st);
        let answers = answer(decided, &appended, &replays);
        self.run_later(account, ops, answers)
    }

    /// The records a batch commits; none in memory (nothing to build).
    fn records(&self, account: &Account, decided: &[Decided]) -> Vec<Record> {
        if !self.config.storage.is_durable() {
            return Vec::new();
        }
        let changes = decided.iter().filter_map(|d| match d {
            // An abandoned op without a request id leaves nothing to remember.
            Decided::Change(_, r) if r.outcome == Outcome::NotApplied && r.request_id.is_empty() => None,
            Decided::Change(fp, result) => Some(op_record(account.id(), fp, result)),
            Decided::Answered(_) | Decided::Later => None,
        });
        changes.collect()
    }

    /// Runs the ops whose request id repeated within the batch, one by one
    /// after it (each then finds the earlier op's answer in the log).
    fn run_later(
        &self,
        account: &Account,
        ops: &mut [(BatchOp, CallContext)],
        answers: Vec<Option<LedgerResult<Pending<OpResult>>>>,
    ) -> Vec<LedgerResult<Pending<OpResult>>> {
        let out = answers
            .into_iter()
            .zip(ops.iter_mut())
            .map(|(answer, (op, ctx))| {
                answer.unwrap_or_else(|| {
                    let done = match op {
                        BatchOp::Deposit(d) => self.deposit(account, d, ctx),
                        BatchOp::Withdraw(w) => self.withdraw(account, w, ctx),
                    };
                    done.map(Pending::ready)
                })
            });
        let out = out.collect();
        self.trim_request_ids();
        out
    }
}

/// The answers of a batch once its append is known; `None` for ops to run later.
fn answer(
    decided: Vec<Decided>,
    appended: &LedgerResult<Option<Ticket>>,
    replays: &Option<Ticket>,
) -> Vec<Option<LedgerResult<Pending<OpResult>>>> {
    decided
        .into_iter()
        .map(|d| match d {
            Decided::Answered(answer) => Some(answer.map(|r| Pending::after(r, replays.clone()))),
            Decided::Change(_, result) => Some(appended.clone().map(|t| Pending::after(result, t))),
            Decided::Later => None,
        })
        .collect()
}

/// What `op` does to `balance`: its outcome and the balance it leaves.
fn outcome_on(account: &Account, balance: u64, op: &BatchOp) -> LedgerResult<(Outcome, u64)> {
    match op {
        BatchOp::Deposit(d) => match balance.checked_add(d.amount) {
            Some(credited) => Ok((Outcome::Approved, credited)),
            None => Err(LedgerError::BalanceOverflow {
                account_id: account.id().to_string(),
                amount: d.amount,
            }),
        },
        BatchOp::Withdraw(w) => match balance.checked_sub(w.amount) {
            Some(left) => Ok((Outcome::Approved, left)),
            None => Ok((Outcome::InsufficientFunds, balance)),
        },
    }
}

/// Decides one op on the scratch state: as the single-op path would.
fn decide(
    account: &Account,
    log: &super::request_log::RequestLog,
    scratch: &mut Scratch,
    op: &BatchOp,
    ctx: &CallContext,
) -> Decided {
    let fp = op.fingerprint();
    match log.check(account.id(), op.request_id(), &fp) {
        Ok(Lookup::Replay(r)) => return Decided::Answered(Ok(r)),
        Err(e) => return Decided::Answered(Err(e)),
        Ok(Lookup::Fresh) => {}
    }
    if ctx.abandoned() {
        return Decided::Change(fp, OpResult::not_applied(op.request_id()));
    }
    let (outcome, balance) = match outcome_on(account, scratch.balance, op) {
        Ok(decided) => decided,
        Err(e) => return Decided::Answered(Err(e)),
    };
    scratch.balance = balance;
    scratch.sequence = scratch.sequence.saturating_add(1);
    let result = OpResult {
        request_id: op.request_id().to_owned(),
        outcome,
        balance,
        sequence: scratch.sequence,
        replayed: false,
        to_balance: 0,
        to_sequence: 0,
    };
    Decided::Change(fp, result)
}
