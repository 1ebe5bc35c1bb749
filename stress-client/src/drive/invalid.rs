//! Calls that break the contract on purpose (`--invalid-ratio`), made like
//! the balance reads of [`super::extras`]: after a money op is recorded, with
//! this probability, one call that must be refused — amount 0
//! (INVALID_ARGUMENT), an account never opened (NOT_FOUND; with `--token`,
//! PERMISSION_DENIED too), or the request id of the op just answered sent
//! again with another amount (ALREADY_EXISTS). The reused id is only ever
//! that of an op whose answer has arrived and took a sequence number, so the
//! server knows it and the call cannot race its first copy. Each call's
//! expected and received status go into the history ([`InvalidCall`]); the
//! checker turns a wrong answer into a `protocol` violation. They take no
//! sequence number and count in none of the money-op numbers.
//!
//! Their own seeded RNG keeps the reads and duplicates of a seed the same
//! whatever `--invalid-ratio` is.

use std::time::Duration;

use crate::h2fast::{self, framing, Conn, FastCall};
use crate::transport::Bank;
use bank::v1 as pb;
use bank_checker::{Invalid, InvalidCall, Kind};
use bytes::BytesMut;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tonic::Status;

use super::requests::Names;
use crate::bound::{deadline_exceeded, request, within};
use crate::request_id::RequestId;
use crate::workload::Planned;

/// gRPC status codes the contract names for invalid calls.
const INVALID_ARGUMENT: u8 = 3;
const NOT_FOUND: u8 = 5;
const ALREADY_EXISTS: u8 = 6;
const PERMISSION_DENIED: u8 = 7;
/// Amounts of calls on unknown accounts: any valid amount will do.
const UNKNOWN_ACCOUNT_AMOUNT_MAX: u64 = 100;

/// One invalid call, planned before it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidPlan {
    pub what: Invalid,
    pub kind: Kind,
    /// The run's account it names (a transfer's source); unused for an unknown account.
    pub account: u32,
    pub to_account: u32,
    pub amount: u64,
    pub wait_for_funds: bool,
    /// For a reused id: the answered op (its plan and its index in the recorder).
    pub reused: Option<(Planned, u32)>,
    /// The call's own number within its worker (names its id and unknown account).
    pub number: u64,
}

/// One worker's planner of invalid calls.
#[derive(Debug)]
pub struct Invalids {
    rng: SmallRng,
    ratio: f64,
    accounts: u32,
    /// A `--token` is sent: an unknown account may be answered PERMISSION_DENIED.
    token: bool,
    next_number: u64,
}

impl Invalids {
    pub fn new(seed: u64, worker: u32, ratio: f64, accounts: u32, token: bool) -> Invalids {
        let stream = seed ^ 0x1A7A_11D0 ^ u64::from(worker).wrapping_mul(0xA24B_AED4_963E_E407);
        Invalids {
            rng: SmallRng::seed_from_u64(stream),
            ratio,
            accounts: accounts.max(1),
            token,
            next_number: 0,
        }
    }

    /// After a money op is recorded: maybe one invalid call. `answered` is
    /// that op (plan and index) when its answer took a sequence number.
    pub fn maybe(&mut self, answered: Option<(Planned, u32)>) -> Option<InvalidPlan> {
        if self.ratio <= 0.0 || !self.rng.random_bool(self.ratio.min(1.0)) {
            return None;
        }
        let number = self.next_number;
        self.next_number += 1;
        let plan = match (self.rng.random_range(0..3u8), answered) {
            (0, Some(original)) => reused(original, number),
            (1, _) => self.unknown_account(number),
            _ => self.zero_amount(number),
        };
        Some(plan)
    }

    fn zero_amount(&mut self, number: u64) -> InvalidPlan {
        let kinds: &[Kind] = match self.accounts >= 2 {
            true => &[Kind::Deposit, Kind::Withdraw, Kind::Transfer],
            false => &[Kind::Deposit, Kind::Withdraw],
        };
        let kind = kinds[self.rng.random_range(0..kinds.len())];
        let account = self.rng.random_range(0..self.accounts);
        let to_account = match kind {
            Kind::Transfer => (account + self.rng.random_range(1..self.accounts)) % self.accounts,
            _ => account,
        };
        InvalidPlan {
            what: Invalid::ZeroAmount,
            kind,
            account,
            to_account,
            amount: 0,
            wait_for_funds: false,
            reused: None,
            number,
        }
    }

    fn unknown_account(&mut self, number: u64) -> InvalidPlan {
        let kind = match self.rng.random_bool(0.5) {
            true => Kind::Deposit,
            false => Kind::Withdraw,
        };
        InvalidPlan {
            what: Invalid::UnknownAccount,
            kind,
            account: InvalidCall::NO_INDEX,
            to_account: InvalidCall::NO_INDEX,
            amount: self.rng.random_range(1..=UNKNOWN_ACCOUNT_AMOUNT_MAX),
            wait_for_funds: false,
            reused: None,
            number,
        }
    }

    /// The history's record of `plan`, answered with gRPC code `got`.
    pub fn record(&self, plan: &InvalidPlan, got: u8, (send_ns, recv_ns): (u64, u64)) -> InvalidCall {
        let (expected, also) = match plan.what {
            Invalid::ZeroAmount => (INVALID_ARGUMENT, InvalidCall::NO_CODE),
            Invalid::UnknownAccount if self.token => (NOT_FOUND, PERMISSION_DENIED),
            Invalid::UnknownAccount => (NOT_FOUND, InvalidCall::NO_CODE),
            Invalid::ReusedId => (ALREADY_EXISTS, InvalidCall::NO_CODE),
        };
        InvalidCall {
            what: plan.what,
            kind: plan.kind,
            account: plan.account,
            op: plan.reused.map_or(InvalidCall::NO_INDEX, |(_, op)| op),
            amount: plan.amount,
            expected,
            also,
            got,
            send_ns,
            recv_ns,
        }
    }
}

/// The answered op `original` sent again under its request id with another amount.
fn reused((planned, op): (Planned, u32), number: u64) -> InvalidPlan {
    let amount = planned.amount.checked_add(1).unwrap_or(planned.amount - 1);
    InvalidPlan {
        what: Invalid::ReusedId,
        kind: planned.kind,
        account: planned.account,
        to_account: planned.to_account,
        amount,
        wait_for_funds: planned.wait_for_funds,
        reused: Some((planned, op)),
        number,
    }
}

/// The request id of `plan` sent by `worker`: the reused op's, or one of its own.
fn request_id(names: &Names, worker: u32, plan: &InvalidPlan) -> String {
    match &plan.reused {
        Some((planned, _)) => names.request_id(worker, planned),
        None => RequestId::invalid(&names.run_id, worker, plan.number).to_string(),
    }
}

/// The id of an account the run never opens.
pub fn unknown_account_id(names: &Names, worker: u32, number: u64) -> String {
    format!("stress-{}-never-opened-{worker:x}-{number:x}", names.run_id)
}

/// The request of an invalid call: one of the three money calls.
enum InvalidRequest {
    Deposit(pb::DepositRequest),
    Withdraw(pb::WithdrawRequest),
    Transfer(pb::TransferRequest),
}

/// Makes the call of `plan` (over the fast path when `fast` is given, as
/// money ops then go: over tonic, each cost the worker's thread wake-ups of
/// tonic's runtime, 1.5 µs per money op at the default 1 %, bench P5) and
/// returns the status code it got (0 for OK).
pub async fn call(
    client: Bank,
    fast: Option<Conn>,
    names: &Names,
    worker: u32,
    plan: InvalidPlan,
    timeout: Duration,
) -> u8 {
    let message = message(names, worker, &plan);
    let reply = match fast {
        Some(conn) => over_fast_path(&conn, message, timeout).await,
        None => over_tonic(client, message, timeout).await,
    };
    reply.map_or_else(
        |status| u8::try_from(i32::from(status.code())).unwrap_or(2),
        |()| 0,
    )
}

fn message(names: &Names, worker: u32, plan: &InvalidPlan) -> InvalidRequest {
    let account = |index: u32| match plan.what {
        Invalid::UnknownAccount => unknown_account_id(names, worker, plan.number),
        _ => names.account(index),
    };
    let (account_id, request_id) = (account(plan.account), request_id(names, worker, plan));
    let amount = plan.amount;
    match plan.kind {
        Kind::Deposit => InvalidRequest::Deposit(pb::DepositRequest {
            account_id,
            amount,
            request_id,
        }),
        Kind::Withdraw => InvalidRequest::Withdraw(pb::WithdrawRequest {
            account_id,
            amount,
            request_id,
            wait_for_funds: plan.wait_for_funds,
        }),
        Kind::Transfer => InvalidRequest::Transfer(pb::TransferRequest {
            from_account_id: account_id,
            to_account_id: account(plan.to_account),
            amount,
            request_id,
        }),
    }
}

async fn over_tonic(mut client: Bank, message: InvalidRequest, timeout: Duration) -> Result<(), Status> {
    match message {
        InvalidRequest::Deposit(m) => within(timeout, client.deposit(request(m, timeout))).await,
        InvalidRequest::Withdraw(m) => within(timeout, client.withdraw(request(m, timeout))).await,
        InvalidRequest::Transfer(m) => within(timeout, client.transfer(request(m, timeout))).await,
    }
    .map(drop)
}

async fn over_fast_path(conn: &Conn, message: InvalidRequest, timeout: Duration) -> Result<(), Status> {
    let mut buf = BytesMut::new();
    let (rpc, body) = match &message {
        InvalidRequest::Deposit(m) => (FastCall::Deposit, framing::encode(m, &mut buf)?),
        InvalidRequest::Withdraw(m) => (FastCall::Withdraw, framing::encode(m, &mut buf)?),
        InvalidRequest::Transfer(m) => (FastCall::Transfer, framing::encode(m, &mut buf)?),
    };
    let call = h2fast::unary::call::<pb::OperationResult>(conn, rpc, body);
    match tokio::time::timeout(timeout, call).await {
        Ok(reply) => reply.map(drop),
        Err(_) => Err(deadline_exceeded(timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(amount: u64) -> (Planned, u32) {
        let planned = Planned {
            kind: Kind::Withdraw,
            account: 2,
            to_account: 2,
            amount,
            wait_for_funds: true,
            number: 77,
        };
        (planned, 5)
    }

    #[test]
    fn every_kind_is_drawn_at_about_the_ratio_and_each_is_invalid() {
        let mut g = Invalids::new(1, 0, 0.25, 4, false);
        let plans: Vec<InvalidPlan> = (0..20_000).filter_map(|_| g.maybe(Some(answered(40)))).collect();
        assert!((4_500..5_500).contains(&plans.len()), "{}", plans.len());
        let count = |w| plans.iter().filter(|p| p.what == w).count();
        for what in [Invalid::ZeroAmount, Invalid::UnknownAccount, Invalid::ReusedId] {
            assert!(count(what) > 1_000, "{what:?}: {}", count(what));
        }
        for p in &plans {
            match p.what {
                Invalid::ZeroAmount => {
                    assert_eq!(p.amount, 0);
                    assert!(p.account < 4 && p.to_account < 4);
                    assert!(p.kind != Kind::Transfer || p.account != p.to_account);
                }
                Invalid::UnknownAccount => {
                    assert!(p.amount > 0 && p.kind != Kind::Transfer);
                    assert_eq!(p.account, InvalidCall::NO_INDEX);
                }
                Invalid::ReusedId => {
                    let (original, op) = p.reused.expect("the reused op");
                    assert_eq!((op, original.number), (5, 77));
                    assert!(p.amount != original.amount && p.amount > 0);
                    assert_eq!((p.kind, p.account, p.wait_for_funds), (Kind::Withdraw, 2, true));
                }
            }
        }
        let numbers: Vec<u64> = plans.iter().map(|p| p.number).collect();
        assert!(
            numbers.windows(2).all(|w| w[0] + 1 == w[1]),
            "own ids never repeat"
        );
    }

    #[test]
    fn an_id_is_reused_only_when_an_answered_op_is_given() {
        let mut g = Invalids::new(3, 1, 1.0, 1, false);
        let plans: Vec<InvalidPlan> = (0..3_000).filter_map(|_| g.maybe(None)).collect();
        assert_eq!(plans.len(), 3_000);
        assert!(plans.iter().all(|p| p.what != Invalid::ReusedId));
        assert!(
            plans.iter().all(|p| p.kind != Kind::Transfer),
            "one account: no transfer"
        );
        assert_eq!(reused(answered(u64::MAX), 0).amount, u64::MAX - 1);
        assert_eq!(Invalids::new(3, 1, 0.0, 4, false).maybe(Some(answered(1))), None);
    }

    #[test]
    fn expected_statuses_follow_the_contract_and_the_token() {
        let mut g = Invalids::new(9, 2, 1.0, 3, false);
        let with_token = Invalids::new(9, 2, 1.0, 3, true);
        let plans: Vec<InvalidPlan> = (0..300).filter_map(|_| g.maybe(Some(answered(9)))).collect();
        for p in &plans {
            let call = g.record(p, 0, (1, 2));
            let token_call = with_token.record(p, 7, (1, 2));
            let want = match p.what {
                Invalid::ZeroAmount => INVALID_ARGUMENT,
                Invalid::UnknownAccount => NOT_FOUND,
                Invalid::ReusedId => ALREADY_EXISTS,
            };
            assert_eq!(
                (call.expected, call.also, call.got),
                (want, InvalidCall::NO_CODE, 0)
            );
            assert!(call.wrong(), "OK is never right");
            let denied_ok = p.what == Invalid::UnknownAccount;
            assert_eq!(token_call.refused_as_expected(), denied_ok, "{p:?}");
        }
        let names = Names {
            run_id: "r".into(),
            accounts: vec!["stress-r-0".into()],
        };
        let unknown = unknown_account_id(&names, 3, 10);
        assert!(!names.accounts.contains(&unknown) && unknown.len() <= 128);
        let own = InvalidPlan {
            reused: None,
            ..reused(answered(9), 10)
        };
        assert_eq!(request_id(&names, 3, &own), "r-3-ia");
        assert_eq!(request_id(&names, 3, &reused(answered(9), 10)), "r-3-4d");
    }
}
