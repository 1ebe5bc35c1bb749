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

/// Sends of one op by [`send_op_until_answered`], the first included.
const ANSWER_SENDS_MAX: u32 = 8;
/// The pause before the first resend, doubled before each next one.
const ANSWER_PAUSE_FIRST: Duration = Duration::from_millis(10);

/// Sends `op` as a patient client does: an answer with a retryable status
/// (see [`super::expect::is_retryable`]: shed, failed before or after
/// applying, late) is followed by the same op under the same request id,
/// up to [`ANSWER_SENDS_MAX`] sends with a doubling pause, so the answer is
/// the op's one outcome (first hand, or the stored result of an earlier
/// send). For the checks whose many calls each carry their own request id
/// and that judge outcomes, not the `replayed` flag. An op without a
/// request id is sent once: a resend could apply it twice.
pub async fn send_op_until_answered(
    bank: Bank,
    op: Op,
    timeout: Duration,
) -> Result<pb::OperationResult, Status> {
    let mut pause = ANSWER_PAUSE_FIRST;
    let mut sends = 1;
    loop {
        let answer = send_op(bank.clone(), op.clone(), timeout).await;
        match answer {
            Err(s)
                if sends < ANSWER_SENDS_MAX
                    && has_request_id(&op)
                    && super::expect::is_retryable(s.code()) =>
            {
                tokio::time::sleep(pause).await;
                pause *= 2;
                sends += 1;
            }
            answer => return answer,
        }
    }
}

/// Whether `op` carries a request id (so sending it again cannot apply it twice).
fn has_request_id(op: &Op) -> bool {
    let rid = match op {
        Op::Deposit(m) => &m.request_id,
        Op::Withdraw(m) => &m.request_id,
        Op::Transfer(m) => &m.request_id,
        Op::GetOperation(m) => &m.request_id,
    };
    !rid.is_empty()
}

/// `message` as a request with deadline `timeout`.
pub fn within<T>(message: T, timeout: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    request
}
