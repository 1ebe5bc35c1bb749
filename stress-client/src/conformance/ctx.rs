//! What a conformance check works with: [`Cx`], its own fresh account ids
//! under the run's unique prefix and the clients (the `--token` principal,
//! the second principal, a caller without a token), and the helpers that
//! send one call and compare its answer with what the contract says,
//! turning a mismatch into a [`Stop::Fail`] that shows the exchange: what
//! was sent, what came back, what was expected.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bank::v1 as pb;
use pb::Outcome;
use tonic::{Code, Request, Response, Status};

use crate::transport::Bank;

/// The longest a request or answer is shown in a failure's detail, in chars.
const SHOWN_CHARS_MAX: usize = 240;

/// Why a check stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The server broke the contract: the exchange that shows it.
    Fail(String),
    /// The check cannot run here (no second token, a limit not reachable).
    Skip(String),
}

/// A step of a check: its value, or why the check stops.
pub type Step<T> = Result<T, Stop>;

/// Fails the check with `detail`.
pub fn fail<T>(detail: impl Into<String>) -> Step<T> {
    Err(Stop::Fail(detail.into()))
}

/// What every check of one run shares.
pub struct Shared {
    /// The `--token` principal (or nobody, without tokens).
    pub bank: Bank,
    /// The `--second-token` principal, when given with `--token`.
    pub second: Option<Bank>,
    /// A caller without a token, and one with a token nobody was given
    /// (both only when `--token` is given).
    pub anonymous: Option<(Bank, Bank)>,
    /// The connection itself (for grpc.health.v1, which needs no token).
    pub channel: tonic::transport::Channel,
    /// The run's unique prefix of every account id.
    pub run: String,
    /// The deadline of each call.
    pub timeout: Duration,
}

/// One check's view: the shared clients and its own account ids.
pub struct Cx {
    pub shared: Arc<Shared>,
    tag: &'static str,
    next: AtomicU32,
}

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

/// `value`'s Debug form, cut to [`SHOWN_CHARS_MAX`] chars.
pub fn show(value: &impl Debug) -> String {
    let text = format!("{value:?}");
    match text.char_indices().nth(SHOWN_CHARS_MAX) {
        Some((at, _)) => format!("{}… ({} chars)", &text[..at], text.chars().count()),
        None => text,
    }
}

/// A status in words: its code and message.
pub fn show_status(status: &Status) -> String {
    format!("status {:?} ({:?})", status.code(), status.message())
}

/// What an `OperationResult` must say; `None` fields are not checked.
#[derive(Debug, Clone, Default)]
pub struct Want {
    pub outcome: Option<Outcome>,
    pub balance: Option<u64>,
    pub sequence: Option<u64>,
    pub replayed: Option<bool>,
    pub to_balance: Option<u64>,
    pub to_sequence: Option<u64>,
}

impl Want {
    /// APPROVED with this balance and sequence, not a replay.
    pub fn approved(balance: u64, sequence: u64) -> Want {
        Want::outcome(Outcome::Approved, balance, sequence)
    }

    /// INSUFFICIENT_FUNDS with this balance and sequence, not a replay.
    pub fn denied(balance: u64, sequence: u64) -> Want {
        Want::outcome(Outcome::InsufficientFunds, balance, sequence)
    }

    /// NOT_APPLIED (balance and sequence 0) with this `replayed` flag.
    pub fn not_applied(replayed: bool) -> Want {
        Want {
            replayed: Some(replayed),
            ..Want::outcome(Outcome::NotApplied, 0, 0)
        }
    }

    fn outcome(outcome: Outcome, balance: u64, sequence: u64) -> Want {
        Want {
            outcome: Some(outcome),
            balance: Some(balance),
            sequence: Some(sequence),
            replayed: Some(false),
            ..Want::default()
        }
    }

    /// The same, with a transfer's target balance and sequence.
    pub fn to(self, to_balance: u64, to_sequence: u64) -> Want {
        Want {
            to_balance: Some(to_balance),
            to_sequence: Some(to_sequence),
            ..self
        }
    }

    /// The same, as a replay of a stored result.
    pub fn replay(self) -> Want {
        Want {
            replayed: Some(true),
            ..self
        }
    }

    /// The fields of `got` that differ from what is wanted, in words.
    fn mismatches(&self, got: &pb::OperationResult) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(o) = self.outcome {
            if got.outcome != o as i32 {
                out.push(format!(
                    "outcome {} (want {})",
                    outcome_name(got.outcome),
                    o.as_str_name()
                ));
            }
        }
        let numbers = [
            ("balance", self.balance, got.balance),
            ("sequence", self.sequence, got.sequence),
            ("to_balance", self.to_balance, got.to_balance),
            ("to_sequence", self.to_sequence, got.to_sequence),
        ];
        for (name, want, got) in numbers {
            if want.is_some_and(|w| w != got) {
                out.push(format!("{name} {got} (want {})", want.unwrap_or_default()));
            }
        }
        if self.replayed.is_some_and(|r| r != got.replayed) {
            out.push(format!("replayed {} (want {})", got.replayed, !got.replayed));
        }
        out
    }
}

/// An outcome's name, or the number when it is not in the enum.
pub fn outcome_name(value: i32) -> String {
    Outcome::try_from(value).map_or_else(
        |_| format!("{value} (not in the enum)"),
        |o| o.as_str_name().into(),
    )
}

impl Cx {
    /// The view of check `tag` over `shared`.
    pub fn new(shared: Arc<Shared>, tag: &'static str) -> Cx {
        Cx {
            shared,
            tag,
            next: AtomicU32::new(0),
        }
    }

    /// A fresh account id no other check or run uses.
    pub fn account(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}.{}.{n}", self.shared.run, self.tag)
    }

    /// The primary client.
    pub fn bank(&self) -> Bank {
        self.shared.bank.clone()
    }

    /// `message` as a request with the call deadline.
    pub fn req<T>(&self, message: T) -> Request<T> {
        self.req_within(message, self.shared.timeout)
    }

    /// `message` as a request with deadline `timeout`.
    pub fn req_within<T>(&self, message: T, timeout: Duration) -> Request<T> {
        within(message, timeout)
    }

    /// Whether calls carry a token: unknown accounts may then be PERMISSION_DENIED.
    pub fn with_token(&self) -> bool {
        self.shared.anonymous.is_some()
    }

    /// The codes an unknown account may get: NOT_FOUND, or with a token
    /// PERMISSION_DENIED too (the server may not tell unknown from not yours).
    pub fn unknown_codes(&self) -> &'static [Code] {
        if self.with_token() {
            &[Code::NotFound, Code::PermissionDenied]
        } else {
            &[Code::NotFound]
        }
    }

    /// Sends `op` with `bank` and deadline `timeout`.
    pub async fn send_as(
        &self,
        bank: &Bank,
        op: Op,
        timeout: Duration,
    ) -> Result<pb::OperationResult, Status> {
        send_op(bank.clone(), op, timeout).await
    }

    /// Sends `op` with the primary client; the raw answer.
    pub async fn send(&self, op: Op) -> Result<pb::OperationResult, Status> {
        self.send_as(&self.shared.bank, op, self.shared.timeout).await
    }

    /// Sends `op`; it must be answered as `want` says.
    pub async fn expect(&self, op: Op, want: Want) -> Step<pb::OperationResult> {
        let sent = show(&op);
        let answer = self.send(op).await;
        check_answer(&sent, answer, &want)
    }

    /// Sends `op` with `bank`; it must be refused with one of `codes`.
    pub async fn refused_as(&self, bank: &Bank, op: Op, codes: &[Code]) -> Step<Code> {
        let sent = show(&op);
        let answer = self.send_as(bank, op, self.shared.timeout).await;
        check_refused(&sent, answer, codes)
    }

    /// Sends `op` with the primary client; it must be refused with one of `codes`.
    pub async fn refused(&self, op: Op, codes: &[Code]) -> Step<Code> {
        self.refused_as(&self.shared.bank, op, codes).await
    }

    /// Opens `id` with `balance`; the answer must echo both, with sequence 0.
    pub async fn open(&self, id: &str, balance: u64) -> Step<()> {
        self.open_as(&self.shared.bank, id, balance).await
    }

    /// [`Cx::open`] with `bank`.
    pub async fn open_as(&self, bank: &Bank, id: &str, balance: u64) -> Step<()> {
        let message = pb::OpenAccountRequest {
            account_id: id.into(),
            initial_balance: balance,
        };
        let sent = show(&message);
        let answer = bank.clone().open_account(self.req(message)).await;
        let got = expect_ok(&sent, answer.map(Response::into_inner))?;
        if (got.account_id.as_str(), got.balance, got.sequence) != (id, balance, 0) {
            return fail(format!(
                "sent OpenAccount {sent}; got {}; expected the id, balance {balance}, sequence 0",
                show(&got)
            ));
        }
        Ok(())
    }

    /// A fresh account opened with `balance`.
    pub async fn fresh(&self, balance: u64) -> Step<String> {
        let id = self.account();
        self.open(&id, balance).await?;
        Ok(id)
    }

    /// OpenAccount of `id` must be refused with one of `codes`.
    pub async fn open_refused(&self, id: &str, balance: u64, codes: &[Code]) -> Step<Code> {
        let message = pb::OpenAccountRequest {
            account_id: id.into(),
            initial_balance: balance,
        };
        let sent = show(&message);
        let answer = self.bank().open_account(self.req(message)).await;
        check_refused(&sent, answer.map(Response::into_inner), codes)
    }

    /// GetBalance of `id` with `bank`, raw.
    pub async fn balance_as(&self, bank: &Bank, id: &str) -> Result<pb::Account, Status> {
        let message = pb::GetBalanceRequest {
            account_id: id.into(),
        };
        let answer = bank.clone().get_balance(self.req(message)).await;
        answer.map(Response::into_inner)
    }

    /// GetBalance of `id` must say `balance` and `sequence`.
    pub async fn state(&self, id: &str, balance: u64, sequence: u64) -> Step<()> {
        let sent = format!("GetBalance {{ account_id: {id:?} }}");
        let got = expect_ok(&sent, self.balance_as(&self.shared.bank, id).await)?;
        if (got.balance, got.sequence) != (balance, sequence) {
            return fail(format!(
                "sent {sent}; got balance {} sequence {}; expected balance {balance} sequence {sequence}",
                got.balance, got.sequence
            ));
        }
        Ok(())
    }

    /// GetBalance of `id` must be refused with one of `codes`.
    pub async fn balance_refused(&self, bank: &Bank, id: &str, codes: &[Code]) -> Step<Code> {
        let sent = format!("GetBalance {{ account_id: {} }}", show(&id));
        check_refused(&sent, self.balance_as(bank, id).await, codes)
    }
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

/// The value of an OK answer, else the failure that shows `sent` and the status.
pub fn expect_ok<T>(sent: &str, answer: Result<T, Status>) -> Step<T> {
    answer.or_else(|status| fail(format!("sent {sent}; got {}; expected OK", show_status(&status))))
}

/// `answer` must be OK and match `want`.
pub fn check_answer(
    sent: &str,
    answer: Result<pb::OperationResult, Status>,
    want: &Want,
) -> Step<pb::OperationResult> {
    let got = expect_ok(sent, answer)?;
    let wrong = want.mismatches(&got);
    if wrong.is_empty() {
        return Ok(got);
    }
    fail(format!("sent {sent}; got {}: {}", show(&got), wrong.join(", ")))
}

/// `answer` must be a status with one of `codes`.
pub fn check_refused<T: Debug>(sent: &str, answer: Result<T, Status>, codes: &[Code]) -> Step<Code> {
    match answer {
        Ok(got) => fail(format!(
            "sent {sent}; got OK {}; expected {}",
            show(&got),
            codes_text(codes)
        )),
        Err(status) if codes.contains(&status.code()) => Ok(status.code()),
        Err(status) => fail(format!(
            "sent {sent}; got {}; expected {}",
            show_status(&status),
            codes_text(codes)
        )),
    }
}

/// `codes` in words: "NotFound or PermissionDenied".
pub fn codes_text(codes: &[Code]) -> String {
    let names: Vec<String> = codes.iter().map(|c| format!("{c:?}")).collect();
    names.join(" or ")
}

/// Fails with `what` unless `ok`.
pub fn ensure(ok: bool, what: impl FnOnce() -> String) -> Step<()> {
    if ok {
        Ok(())
    } else {
        fail(what())
    }
}
