//! The bug zoo's one bug on the wire, `bad-outcome`: answers of money-moving
//! ops converted for the wire, one in [`BAD_OUTCOME_EVERY`] carrying an
//! outcome value the enum does not have. The ledger's bugs are in
//! `crate::backend::ledger` (module `zoo`); nothing here acts unless the bug is injected.

use std::sync::atomic::{AtomicU64, Ordering};

use bank::v1 as pb;

use crate::backend::ledger::{InjectedBug, OpResult};

/// `bad-outcome` corrupts one in this many answers.
pub const BAD_OUTCOME_EVERY: u64 = 20;

/// The outcome value `bad-outcome` sends: not a `bank.v1.Outcome`.
pub const BAD_OUTCOME_VALUE: i32 = 7;

/// Converts the answers of Deposit, Withdraw, Transfer and WithdrawStream.
#[derive(Debug)]
pub struct Answers {
    bad_outcome: bool,
    sent: AtomicU64,
}

impl Answers {
    /// Answers as `bug` has them (only `bad-outcome` changes anything).
    pub fn new(bug: InjectedBug) -> Self {
        Answers {
            bad_outcome: bug == InjectedBug::BadOutcome,
            sent: AtomicU64::new(0),
        }
    }

    /// The wire form of `result`. The op itself was applied normally.
    pub fn wire(&self, result: OpResult) -> pb::OperationResult {
        let mut answer = pb::OperationResult::from(result);
        // BUG (zoo): bad-outcome, a deterministic one answer in 20.
        if self.bad_outcome
            && self.sent.fetch_add(1, Ordering::Relaxed) % BAD_OUTCOME_EVERY == BAD_OUTCOME_EVERY - 1
        {
            answer.outcome = BAD_OUTCOME_VALUE;
        }
        answer
    }
}
