//! Property: arbitrary decoded requests — random strings (empty, long,
//! unicode, over the byte limits), random amounts (0, 1, u64::MAX and
//! anything between), random request ids, random methods — go through the
//! gRPC service layer (`BankService`, the very handlers tonic calls) without
//! a panic, every error status leaves every account exactly as it was, and
//! every success changes the accounts exactly as its answer says.
//!
//! A panic in a handler fails the test directly; one on the blocking pool
//! surfaces as INTERNAL, and one in a stream's task as a stream that ends
//! early: both are caught below.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bank::v1 as pb;
use bank::v1::bank_server::Bank;
use bank_server::admission::ops::Ops;
use bank_server::backend::ledger::{Ledger, LedgerConfig, ACCOUNT_ID_MAX_BYTES, REQUEST_ID_MAX_BYTES};
use bank_server::rpc::service::BankService;
use bytes::Bytes;
use futures::StreamExt;
use proptest::prelude::*;
use tonic::codec::Streaming;
use tonic::{Code, Request, Status};

/// Small limits so that the limit paths are taken too.
const MAX_ACCOUNTS: usize = 4;
const RETENTION: usize = 3;
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
enum Call {
    Open(pb::OpenAccountRequest),
    Balance(pb::GetBalanceRequest),
    Deposit(pb::DepositRequest),
    Withdraw(pb::WithdrawRequest),
    Stream(Vec<pb::WithdrawRequest>),
    Transfer(pb::TransferRequest),
    GetOp(pb::GetOperationRequest),
}

fn account_id() -> impl Strategy<Value = String> {
    prop_oneof![
        24 => prop::sample::select(vec!["a", "b", "c"]).prop_map(String::from),
        1 => Just(String::new()),
        1 => Just("ü".repeat(64)),  // 128 bytes: valid
        1 => Just("ü".repeat(65)),  // 130 bytes: too long
        1 => Just("x".repeat(ACCOUNT_ID_MAX_BYTES + 1)),
        1 => Just("k".repeat(10 * 1024)),
        2 => any::<String>(),
        1 => "\\PC{0,3}",
    ]
}

fn request_id() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        12 => prop::sample::select(vec!["r1", "r2", "r3", "r4", "r5"]).prop_map(String::from),
        1 => Just("r".repeat(REQUEST_ID_MAX_BYTES)),
        1 => Just("r".repeat(REQUEST_ID_MAX_BYTES + 1)),
        1 => Just("é".repeat(33)), // 66 bytes
        1 => Just("q".repeat(10 * 1024)),
        2 => any::<String>(),
    ]
}

fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![
        1 => Just(0u64),
        1 => Just(1u64),
        2 => Just(u64::MAX),
        1 => Just(u64::MAX - 1),
        1 => Just(u64::MAX / 2 + 1),
        12 => 1u64..200,
        2 => any::<u64>(),
    ]
}

fn withdraw_request() -> impl Strategy<Value = pb::WithdrawRequest> {
    (account_id(), amount(), request_id(), any::<bool>()).prop_map(
        |(account_id, amount, request_id, wait)| pb::WithdrawRequest {
            account_id,
            amount,
            request_id,
            wait_for_funds: wait,
        },
    )
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        2 => (account_id(), amount()).prop_map(|(account_id, initial_balance)| {
            Call::Open(pb::OpenAccountRequest { account_id, initial_balance })
        }),
        1 => account_id().prop_map(|account_id| Call::Balance(pb::GetBalanceRequest { account_id })),
        3 => (account_id(), amount(), request_id()).prop_map(|(account_id, amount, request_id)| {
            Call::Deposit(pb::DepositRequest { account_id, amount, request_id })
        }),
        3 => withdraw_request().prop_map(Call::Withdraw),
        2 => prop::collection::vec(withdraw_request(), 0..4).prop_map(Call::Stream),
        3 => (account_id(), account_id(), amount(), request_id()).prop_map(|(from, to, amount, request_id)| {
            Call::Transfer(pb::TransferRequest {
                from_account_id: from,
                to_account_id: to,
                amount,
                request_id,
            })
        }),
        2 => (account_id(), request_id()).prop_map(|(account_id, request_id)| {
            Call::GetOp(pb::GetOperationRequest { account_id, request_id })
        }),
    ]
}

/// What the test believes every account holds: (balance, sequence).
type Model = BTreeMap<String, (u64, u64)>;

fn service() -> (BankService, Arc<Ops>) {
    let config = LedgerConfig {
        processing_delay: Duration::ZERO,
        max_accounts: MAX_ACCOUNTS,
        request_id_retention: RETENTION,
        // A withdrawal that waits for funds gives up at once: no test sleeps.
        max_wait: Duration::ZERO,
        ..LedgerConfig::default()
    };
    let ops = Arc::new(Ops::new(Arc::new(Ledger::new(config))));
    (BankService::new(Arc::clone(&ops), 4), ops)
}

/// Every account the model knows, read from the ledger, plus the account count.
fn ledger_state(ops: &Ops, model: &Model) -> (Model, usize) {
    let accounts = model
        .keys()
        .map(|id| {
            let account = ops
                .backend()
                .account_blocking(id)
                .expect("a known account exists");
            let s = ops.backend().balance_blocking(&account).expect("a balance");
            (id.clone(), (s.balance, s.sequence))
        })
        .collect();
    (accounts, ops.backend().state().open_accounts)
}

fn valid_account(id: &str) -> bool {
    !id.is_empty() && id.len() <= ACCOUNT_ID_MAX_BYTES && !id.chars().any(char::is_control)
}

fn valid_request(id: &str) -> bool {
    id.len() <= REQUEST_ID_MAX_BYTES && !id.chars().any(char::is_control)
}

/// The status the request must get before it reaches any account, if any:
/// INVALID_ARGUMENT for a malformed field, NOT_FOUND for an unknown account.
fn refused_up_front(call: &Call, model: &Model) -> Option<Code> {
    let known = |id: &str| model.contains_key(id);
    let money = |id: &str, amount: u64, rid: &str| {
        if !valid_account(id) || amount == 0 || !valid_request(rid) {
            Some(Code::InvalidArgument)
        } else if !known(id) {
            Some(Code::NotFound)
        } else {
            None
        }
    };
    match call {
        Call::Open(r) => (!valid_account(&r.account_id)).then_some(Code::InvalidArgument),
        Call::Balance(r) => {
            if !valid_account(&r.account_id) {
                Some(Code::InvalidArgument)
            } else {
                (!known(&r.account_id)).then_some(Code::NotFound)
            }
        }
        Call::Deposit(r) => money(&r.account_id, r.amount, &r.request_id),
        Call::Withdraw(r) => money(&r.account_id, r.amount, &r.request_id),
        Call::Stream(_) => None,
        Call::Transfer(r) => {
            let fields_ok = valid_account(&r.from_account_id)
                && valid_account(&r.to_account_id)
                && r.amount > 0
                && valid_request(&r.request_id)
                && r.from_account_id != r.to_account_id;
            if !fields_ok {
                Some(Code::InvalidArgument)
            } else if !known(&r.from_account_id) || !known(&r.to_account_id) {
                Some(Code::NotFound)
            } else {
                None
            }
        }
        // Both ids are checked (a request id is needed) before the account is looked up.
        Call::GetOp(r) => {
            let rid = &r.request_id;
            if !valid_account(&r.account_id) || rid.is_empty() || !valid_request(rid) {
                Some(Code::InvalidArgument)
            } else {
                (!known(&r.account_id)).then_some(Code::NotFound)
            }
        }
    }
}

/// Applies a successful, non-replayed withdrawal answer to the model, after
/// checking that the answer is possible.
fn apply_withdrawal(
    model: &mut Model,
    r: &pb::WithdrawRequest,
    a: &pb::OperationResult,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(&a.request_id, &r.request_id);
    let (balance, sequence) = model.get_mut(&r.account_id).expect("known account");
    if a.replayed {
        return Ok(());
    }
    prop_assert_eq!(a.sequence, *sequence + 1, "gapless sequence");
    match a.outcome() {
        pb::Outcome::Approved => {
            prop_assert!(*balance >= r.amount, "approved only with funds");
            *balance -= r.amount;
        }
        pb::Outcome::InsufficientFunds => prop_assert!(*balance < r.amount, "denied only without funds"),
        other => prop_assert!(false, "unexpected outcome {:?}", other),
    }
    *sequence += 1;
    prop_assert_eq!(a.balance, *balance);
    Ok(())
}

/// Runs one call through the service and checks it against the model.
async fn step(svc: &BankService, ops: &Ops, model: &mut Model, call: Call) -> Result<(), TestCaseError> {
    let before = ledger_state(ops, model);
    let up_front = refused_up_front(&call, model);
    let result: Result<(), Status> = match &call {
        Call::Open(r) => match svc.open_account(Request::new(r.clone())).await {
            Ok(a) => {
                let a = a.into_inner();
                prop_assert_eq!((a.balance, a.sequence), (r.initial_balance, 0));
                prop_assert!(!model.contains_key(&r.account_id) && model.len() < MAX_ACCOUNTS);
                model.insert(r.account_id.clone(), (r.initial_balance, 0));
                Ok(())
            }
            Err(s) => {
                let expect = up_front.unwrap_or(if model.contains_key(&r.account_id) {
                    Code::AlreadyExists
                } else {
                    Code::ResourceExhausted
                });
                prop_assert_eq!(s.code(), expect, "{:?}", s);
                Err(s)
            }
        },
        Call::Balance(r) => svc.get_balance(Request::new(r.clone())).await.map(|a| {
            let a = a.into_inner();
            assert_eq!(Some(&(a.balance, a.sequence)), model.get(&r.account_id));
        }),
        Call::Deposit(r) => match svc.deposit(Request::new(r.clone())).await {
            Ok(a) => {
                let a = a.into_inner();
                let (balance, sequence) = model.get_mut(&r.account_id).expect("known account");
                if !a.replayed {
                    prop_assert_eq!(a.outcome(), pb::Outcome::Approved);
                    *balance = balance
                        .checked_add(r.amount)
                        .expect("an approved deposit cannot overflow");
                    *sequence += 1;
                    prop_assert_eq!((a.balance, a.sequence), (*balance, *sequence));
                }
                Ok(())
            }
            Err(s) => {
                if s.code() == Code::FailedPrecondition {
                    let (balance, _) = model[&r.account_id];
                    prop_assert!(
                        balance.checked_add(r.amount).is_none(),
                        "overflow refused only on overflow"
                    );
                }
                Err(s)
            }
        },
        Call::Withdraw(r) => match svc.withdraw(Request::new(r.clone())).await {
            Ok(a) => {
                apply_withdrawal(model, r, &a.into_inner())?;
                Ok(())
            }
            Err(s) => Err(s),
        },
        Call::Transfer(r) => match svc.transfer(Request::new(r.clone())).await {
            Ok(a) => {
                let a = a.into_inner();
                if !a.replayed {
                    let (from_balance, from_sequence) = model[&r.from_account_id];
                    let (to_balance, to_sequence) = model[&r.to_account_id];
                    let approved = a.outcome() == pb::Outcome::Approved;
                    prop_assert_eq!(approved, from_balance >= r.amount, "{:?}", a);
                    let moved = if approved { r.amount } else { 0 };
                    let from = (from_balance - moved, from_sequence + 1);
                    let to = (
                        to_balance.checked_add(moved).expect("no overflow"),
                        to_sequence + 1,
                    );
                    prop_assert_eq!(
                        (a.balance, a.sequence, a.to_balance, a.to_sequence),
                        (from.0, from.1, to.0, to.1)
                    );
                    model.insert(r.from_account_id.clone(), from);
                    model.insert(r.to_account_id.clone(), to);
                }
                Ok(())
            }
            Err(s) => {
                if s.code() == Code::FailedPrecondition {
                    let (from_balance, _) = model[&r.from_account_id];
                    let (to_balance, _) = model[&r.to_account_id];
                    prop_assert!(from_balance >= r.amount && to_balance.checked_add(r.amount).is_none());
                }
                Err(s)
            }
        },
        Call::GetOp(r) => svc.get_operation(Request::new(r.clone())).await.map(drop),
        Call::Stream(requests) => return stream(svc, ops, model, requests).await,
    };
    let after = ledger_state(ops, model);
    match result {
        Ok(()) => {
            prop_assert_eq!(up_front, None, "{:?} succeeded", call);
            prop_assert_eq!(&after.0, &*model, "the ledger matches the answers");
            prop_assert_eq!(after.1, model.len());
        }
        Err(status) => {
            check_code(&call, up_front, &status)?;
            prop_assert_eq!(
                &after,
                &before,
                "a refused call changed the ledger: {:?} -> {:?}",
                call,
                status
            );
        }
    }
    Ok(())
}

/// An error status is the one the request must get up front, or one of the
/// codes its method may answer once it reaches an account.
fn check_code(call: &Call, up_front: Option<Code>, status: &Status) -> Result<(), TestCaseError> {
    if let Some(code) = up_front {
        prop_assert_eq!(status.code(), code, "{:?}: {:?}", call, status);
        return Ok(());
    }
    let conflict = |rid: &str| !rid.is_empty() && status.code() == Code::AlreadyExists;
    let allowed = match call {
        Call::Open(_) => matches!(status.code(), Code::AlreadyExists | Code::ResourceExhausted),
        Call::Balance(_) | Call::Stream(_) => false,
        Call::Deposit(r) => conflict(&r.request_id) || status.code() == Code::FailedPrecondition,
        Call::Withdraw(r) => conflict(&r.request_id),
        Call::Transfer(r) => conflict(&r.request_id) || status.code() == Code::FailedPrecondition,
        Call::GetOp(_) => status.code() == Code::FailedPrecondition,
    };
    prop_assert!(allowed, "{:?} must not answer {:?}", call, status);
    Ok(())
}

/// One `WithdrawStream` carrying `requests`: one answer per request, in order,
/// until the first invalid one, which ends the stream with its status and
/// changes nothing.
async fn stream(
    svc: &BankService,
    ops: &Ops,
    model: &mut Model,
    requests: &[pb::WithdrawRequest],
) -> Result<(), TestCaseError> {
    let mut body = Vec::new();
    for r in requests {
        let encoded = prost::Message::encode_to_vec(r);
        body.push(0u8);
        body.extend_from_slice(&u32::try_from(encoded.len()).unwrap().to_be_bytes());
        body.extend_from_slice(&encoded);
    }
    let inbound = Streaming::new_request(
        tonic_prost::ProstDecoder::<pb::WithdrawRequest>::default(),
        http_body_util::Full::new(Bytes::from(body)),
        None,
        Some(MAX_MESSAGE_BYTES),
    );
    let answers = svc
        .withdraw_stream(Request::new(inbound))
        .await
        .map_err(|s| TestCaseError::fail(format!("the stream was refused: {s:?}")))?
        .into_inner();
    let answers: Vec<_> = answers.collect().await;
    prop_assert!(answers.len() <= requests.len(), "at most one answer per request");
    for (i, (request, answer)) in requests.iter().zip(&answers).enumerate() {
        let before = ledger_state(ops, model);
        let up_front = refused_up_front(&Call::Withdraw(request.clone()), model);
        match answer {
            Ok(a) => {
                prop_assert_eq!(up_front, None);
                apply_withdrawal(model, request, a)?;
            }
            Err(status) => {
                prop_assert_eq!(i + 1, answers.len(), "an error ends the stream");
                check_code(&Call::Withdraw(request.clone()), up_front, status)?;
                prop_assert_eq!(
                    ledger_state(ops, model),
                    before,
                    "the refused request changed nothing"
                );
                return Ok(());
            }
        }
    }
    prop_assert_eq!(
        answers.len(),
        requests.len(),
        "every request answered (the stream task did not die)"
    );
    prop_assert_eq!(ledger_state(ops, model).0, model.clone());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_requests_never_panic_and_refusals_change_nothing(
        opening in (amount(), amount()),
        calls in prop::collection::vec(call(), 1..40)
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (svc, ops) = service();
            let mut model = Model::new();
            // Two accounts exist from the start, so most calls reach one.
            let (a, b) = opening;
            for (id, initial_balance) in [("a", a), ("b", b)] {
                let open = Call::Open(pb::OpenAccountRequest { account_id: id.into(), initial_balance });
                step(&svc, &ops, &mut model, open).await?;
            }
            for call in calls {
                step(&svc, &ops, &mut model, call).await?;
            }
            Ok::<(), TestCaseError>(())
        })?;
    }
}
