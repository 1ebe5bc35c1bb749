//! Conversions between the wire messages of `bank.v1` and the ledger's plain
//! types. Pure field mapping: validation happens in the ledger.

use bank::v1 as pb;

use crate::backend::ledger::{Deposit, OpResult, Outcome, Snapshot, Transfer, Withdrawal};

impl From<pb::DepositRequest> for Deposit {
    fn from(r: pb::DepositRequest) -> Self {
        Deposit {
            account_id: r.account_id,
            amount: r.amount,
            request_id: r.request_id,
        }
    }
}

impl From<pb::WithdrawRequest> for Withdrawal {
    fn from(r: pb::WithdrawRequest) -> Self {
        Withdrawal {
            account_id: r.account_id,
            amount: r.amount,
            request_id: r.request_id,
            wait_for_funds: r.wait_for_funds,
        }
    }
}

impl From<pb::TransferRequest> for Transfer {
    fn from(r: pb::TransferRequest) -> Self {
        Transfer {
            from_account_id: r.from_account_id,
            to_account_id: r.to_account_id,
            amount: r.amount,
            request_id: r.request_id,
        }
    }
}

impl From<Outcome> for pb::Outcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Approved => pb::Outcome::Approved,
            Outcome::InsufficientFunds => pb::Outcome::InsufficientFunds,
            Outcome::NotApplied => pb::Outcome::NotApplied,
        }
    }
}

impl From<OpResult> for pb::OperationResult {
    fn from(r: OpResult) -> Self {
        pb::OperationResult {
            request_id: r.request_id,
            outcome: pb::Outcome::from(r.outcome).into(),
            balance: r.balance,
            sequence: r.sequence,
            replayed: r.replayed,
            to_balance: r.to_balance,
            to_sequence: r.to_sequence,
        }
    }
}

impl From<Snapshot> for pb::Account {
    fn from(s: Snapshot) -> Self {
        pb::Account {
            account_id: s.account_id,
            balance: s.balance,
            sequence: s.sequence,
        }
    }
}
