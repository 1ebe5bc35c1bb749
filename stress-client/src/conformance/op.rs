//! The calls a check sends that are answered with an `OperationResult`
//! (deposits, withdrawals, transfers, GetOperation): their builders, and
//! one function that sends any of them with a deadline.

use std::time::Duration;

use bank::v1 as pb;
use tonic::{Request, Response, Status};

use crate::transport::Bank;

/// A money op or a GetOperation: the calls answered with an `OperationResult`.
#[derive(Debug, Clone)]
pub enum Op {
    Deposit(pb::DepositRequest),
    Withdraw(pb::WithdrawRequest),
    Transfer(pb::TransferRequest),
    GetOperation(pb::GetOperationRequest),
}

/// A deposit of `amount` on `id` under request id `rid` ("" for none).
pub fn dep(id: &str, amount: u64, rid: &str) -> Op {
    Op::Deposit(pb::DepositRequest {
        account_id: id.into(),
        amount,
        request_id: rid.into(),
    })
}

/// A withdrawal that does not wait for funds.
pub fn wd(id: &str, amount: u64, rid: &str) -> Op {
    Op::Withdraw(withdrawal(id, amount, rid, false))
}

/// A withdrawal that waits for funds.
pub fn wd_wait(id: &str, amount: u64, rid: &str) -> Op {
    Op::Withdraw(withdrawal(id, amount, rid, true))
}

/// The message of a withdrawal.
pub fn withdrawal(id: &str, amount: u64, rid: &str, wait_for_funds: bool) -> pb::WithdrawRequest {
    pb::WithdrawRequest {
        account_id: id.into(),
        amount,
        request_id: rid.into(),
        wait_for_funds,
    }
}

/// A transfer of `amount` from `from` to `to`.
pub fn xfer(from: &str, to: &str, amount: u64, rid: &str) -> Op {
    Op::Transfer(pb::TransferRequest {
        from_account_id: from.into(),
        to_account_id: to.into(),
        amount,
        request_id: rid.into(),
    })
}

/// A GetOperation of `rid` on `id`.
pub fn get_op(id: &str, rid: &str) -> Op {
    Op::GetOperation(pb::GetOperationRequest {
        account_id: id.into(),
        request_id: rid.into(),
    })
}

/// Sends `op` with `bank` and deadline `timeout` (owns its arguments, so it can be spawned).
pub async fn send_op(mut bank: Bank, op: Op, timeout: Duration) -> Result<pb::OperationResult, Status> {
    let answer = match op {
        Op::Deposit(m) => bank.deposit(within(m, timeout)).await,
        Op::Withdraw(m) => bank.withdraw(within(m, timeout)).await,
        Op::Transfer(m) => bank.transfer(within(m, timeout)).await,
        Op::GetOperation(m) => bank.get_operation(within(m, timeout)).await,
    };
    answer.map(Response::into_inner)
}

/// `message` as a request with deadline `timeout`.
pub fn within<T>(message: T, timeout: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    request
}
