//! What a conformance check works with: [`Cx`], its own fresh account ids
//! under the run's unique prefix and the clients (the `--token` principal,
//! the second principal, a caller without a token), and the helpers that
//! send one call and compare its answer with what the contract says,
//! turning a mismatch into a [`Stop::Fail`] that shows the exchange: what
//! was sent, what came back, what was expected. The call builders
//! ([`super::op`]) and the answer comparisons ([`super::expect`]) are
//! re-exported here, so a check imports from one place.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bank::v1 as pb;
use tonic::{Code, Request, Response, Status};

pub use super::expect::*;
pub use super::op::*;
use crate::transport::Bank;

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
    /// Which attempt of the check this is (0: the first).
    attempt: u32,
    next: AtomicU32,
}

impl Cx {
    /// The view of attempt `attempt` of check `tag` over `shared`.
    pub fn new(shared: Arc<Shared>, tag: &'static str, attempt: u32) -> Cx {
        Cx {
            shared,
            tag,
            attempt,
            next: AtomicU32::new(0),
        }
    }

    /// A fresh account id no other check, attempt or run uses.
    pub fn account(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        match self.attempt {
            0 => format!("{}.{}.{n}", self.shared.run, self.tag),
            a => format!("{}.{}.{n}.a{a}", self.shared.run, self.tag),
        }
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
