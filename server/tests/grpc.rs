//! End-to-end tests of bank-server over gRPC: a real server on 127.0.0.1:0 per
//! test, driven by the generated client (every RPC, every status code, streams,
//! waiting, abandoned calls, the seed race, health and graceful shutdown).
//! The codes of unknown accounts, reused ids and overflow, and replays and
//! fences, are contract tests, run on every backend (`backends.rs`).

mod common;

use std::time::Duration;

use common::*;
use futures::future::join_all;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_round_trips() {
    let mut s = start(config(|_| {})).await;
    let bank = &mut s.bank;
    let opened = ok(bank.open_account(open_req("a", 100)).await);
    assert_eq!(
        (opened.account_id.as_str(), opened.balance, opened.sequence),
        ("a", 100, 0)
    );
    open_all(bank, &[("b", 0)]).await;

    let d = ok(bank.deposit(deposit("a", 20, "d1")).await);
    assert_eq!(
        (d.outcome(), d.balance, d.sequence, d.request_id.as_str()),
        (Outcome::Approved, 120, 1, "d1")
    );
    let w = ok(bank.withdraw(withdraw("a", 50, "")).await);
    assert_eq!((w.outcome(), w.balance, w.sequence), (Outcome::Approved, 70, 2));
    let w = ok(bank.withdraw(withdraw("a", 71, "")).await);
    assert_eq!(
        (w.outcome(), w.balance, w.sequence),
        (Outcome::InsufficientFunds, 70, 3)
    );
    let t = ok(bank.transfer(transfer("a", "b", 30, "t1")).await);
    assert_eq!(
        (t.outcome(), t.balance, t.sequence, t.to_balance, t.to_sequence),
        (Outcome::Approved, 40, 4, 30, 1)
    );
    let stored = ok(bank.get_operation(get_op("a", "t1")).await);
    assert_eq!(stored, OperationResult { replayed: true, ..t });
    let mut answers = ok(bank
        .withdraw_stream(tokio_stream::iter([withdraw("b", 5, "s1")]))
        .await);
    let streamed = answers.message().await.unwrap().expect("one answer");
    assert_eq!(
        (streamed.outcome(), streamed.balance, streamed.sequence),
        (Outcome::Approved, 25, 2)
    );
    assert!(
        answers.message().await.unwrap().is_none(),
        "the stream ends with its requests"
    );

    assert_eq!(state(bank, "a").await, (40, 4));
    assert_eq!(state(bank, "b").await, (25, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_invalid_argument_and_change_nothing() {
    let mut s = start(config(|_| {})).await;
    let bank = &mut s.bank;
    open_all(bank, &[("a", 100), ("b", 0)]).await;
    let long_id = "x".repeat(129);
    let long_rid = "r".repeat(65);
    let codes = [
        code(bank.open_account(open_req("", 1)).await),
        code(bank.open_account(open_req(&long_id, 1)).await),
        code(bank.get_balance(get_balance("")).await),
        code(bank.deposit(deposit("a", 0, "")).await),
        code(bank.deposit(deposit("", 1, "")).await),
        code(bank.deposit(deposit("a", 1, &long_rid)).await),
        code(bank.withdraw(withdraw("a", 0, "")).await),
        code(bank.withdraw(withdraw(&long_id, 1, "")).await),
        code(bank.transfer(transfer("a", "a", 1, "")).await),
        code(bank.transfer(transfer("a", "b", 0, "")).await),
        code(bank.transfer(transfer("a", "", 1, "")).await),
        code(bank.get_operation(get_op("a", "")).await),
        code(bank.get_operation(get_op("a", &long_rid)).await),
    ];
    for (i, c) in codes.into_iter().enumerate() {
        assert_eq!(c, Code::InvalidArgument, "request #{i}");
    }
    // The limits themselves are accepted.
    ok(bank.open_account(open_req(&"x".repeat(128), 1)).await);
    ok(bank.deposit(deposit("a", 1, &"r".repeat(64))).await);
    assert_eq!(state(bank, "a").await, (101, 1));
    assert_eq!(state(bank, "b").await, (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_and_waiter_limits_are_resource_exhausted() {
    let mut s = start(config(|c| {
        c.ledger.max_accounts = 2;
        c.ledger.max_waiters_per_account = 1;
    }))
    .await;
    open_all(&mut s.bank, &[("a", 0), ("b", 0)]).await;
    let bank = &mut s.bank;
    assert_eq!(
        code(bank.open_account(open_req("c", 0)).await),
        Code::ResourceExhausted
    );

    let waiter = start_waiter(bank, waiting("a", 5, "w1")).await;
    assert_eq!(
        code(bank.withdraw(waiting("a", 5, "w2")).await),
        Code::ResourceExhausted
    );
    // Another account has its own waiter slot.
    ok(bank.deposit(deposit("b", 5, "")).await);
    let other = ok(bank.withdraw(waiting("b", 5, "")).await);
    assert_eq!(other.outcome(), Outcome::Approved);

    ok(bank.deposit(deposit("a", 5, "")).await);
    let woken = join(waiter).await.unwrap();
    assert_eq!(
        (woken.outcome(), woken.balance, woken.sequence),
        (Outcome::Approved, 0, 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_account_queue_is_resource_exhausted() {
    let mut s = start(config(|c| {
        c.ledger.max_queued_per_account = 1;
        c.ledger.processing_delay = Duration::from_millis(300);
    }))
    .await;
    // Two deposits sent at once overlap by far more than the scheduler can
    // separate them, but retry a few times rather than assume it.
    for attempt in 0..5 {
        let id = format!("q{attempt}");
        open_all(&mut s.bank, &[(&id, 0)]).await;
        let calls = [1, 2].map(|amount| {
            let mut bank = s.bank.clone();
            let request = deposit(&id, amount, "");
            async move { bank.deposit(request).await.map(Response::into_inner) }
        });
        let [first, second] = <[_; 2]>::try_from(join_all(calls).await).unwrap();
        let (admitted, refused) = match (first, second) {
            (Ok(a), Err(r)) | (Err(r), Ok(a)) => (a, r),
            (Ok(_), Ok(_)) => continue,
            other => panic!("unexpected answers {other:?}"),
        };
        assert_eq!(refused.code(), Code::ResourceExhausted);
        assert_eq!(
            state(&mut s.bank, &id).await,
            (admitted.balance, 1),
            "only the admitted one applied"
        );
        return;
    }
    panic!("two overlapping deposits were both admitted every time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_size_limit_is_refused() {
    let mut s = start(config(|c| c.max_message_bytes = 256)).await;
    let bank = &mut s.bank;
    open_all(bank, &[("a", 0)]).await;
    ok(bank.deposit(deposit("a", 1, &"r".repeat(64))).await);
    let huge = deposit("a", 1, &"r".repeat(1_000));
    let c = code(bank.deposit(huge).await);
    assert!(matches!(c, Code::OutOfRange | Code::ResourceExhausted), "{c:?}");
    assert_eq!(
        state(bank, "a").await,
        (1, 1),
        "the server still serves; nothing applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_request_id_has_an_unknown_outcome_and_is_fenced() {
    let mut s = start(config(|c| c.ledger.request_id_retention = 2)).await;
    let bank = &mut s.bank;
    open_all(bank, &[("a", 0)]).await;
    for rid in ["r1", "r2", "r3"] {
        ok(bank.deposit(deposit("a", 1, rid)).await);
    }
    assert_eq!(ok(bank.get_operation(get_op("a", "r3")).await).sequence, 3);
    assert_eq!(
        code(bank.get_operation(get_op("a", "r1")).await),
        Code::FailedPrecondition
    );
    let late = ok(bank.deposit(deposit("a", 1, "r1")).await);
    assert_eq!((late.outcome(), late.replayed), (Outcome::NotApplied, true));
    assert_eq!(state(bank, "a").await, (3, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdraw_stream_answers_every_request_in_order() {
    let mut s = start(config(|c| c.ledger.processing_delay = Duration::from_millis(1))).await;
    open_all(&mut s.bank, &[("a", 100)]).await;
    let amounts = [30, 50, 40, 10, 20, 1];
    let requests: Vec<_> = amounts
        .iter()
        .enumerate()
        .map(|(i, &a)| withdraw("a", a, &format!("s{i}")))
        .collect();
    let mut answers = ok(s.bank.withdraw_stream(tokio_stream::iter(requests)).await);
    let mut model = 100u64;
    for (i, amount) in amounts.into_iter().enumerate() {
        let r = answers.message().await.unwrap().expect("an answer per request");
        let expected = match model.checked_sub(amount) {
            Some(left) => {
                model = left;
                Outcome::Approved
            }
            None => Outcome::InsufficientFunds,
        };
        assert_eq!(r.request_id, format!("s{i}"), "answers come in request order");
        assert_eq!(
            (r.outcome(), r.balance, r.sequence),
            (expected, model, i as u64 + 1)
        );
    }
    assert!(answers.message().await.unwrap().is_none());
    assert_eq!(state(&mut s.bank, "a").await, (model, amounts.len() as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_request_ends_the_stream_after_the_earlier_answers() {
    let mut s = start(config(|_| {})).await;
    open_all(&mut s.bank, &[("a", 100)]).await;
    let requests = [
        withdraw("a", 10, "ok1"),
        withdraw("a", 20, "ok2"),
        withdraw("a", 0, "bad"),
        withdraw("a", 5, "after"),
    ];
    let mut answers = ok(s.bank.withdraw_stream(tokio_stream::iter(requests)).await);
    for (rid, balance) in [("ok1", 90), ("ok2", 70)] {
        let r = answers
            .message()
            .await
            .unwrap()
            .expect("earlier requests are answered");
        assert_eq!((r.request_id.as_str(), r.balance), (rid, balance));
    }
    assert_eq!(code(answers.message().await), Code::InvalidArgument);
    assert_eq!(
        state(&mut s.bank, "a").await,
        (70, 2),
        "nothing after the invalid request ran"
    );
    assert_eq!(
        ok(s.bank.get_operation(get_op("a", "after")).await).outcome(),
        Outcome::NotApplied
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_withdrawal_is_woken_by_a_deposit() {
    let mut s = start(config(|c| c.ledger.processing_delay = Duration::from_millis(1))).await;
    open_all(&mut s.bank, &[("a", 0)]).await;
    let bank = &mut s.bank;
    let waiter = start_waiter(bank, waiting("a", 50, "w")).await;
    // While it waits its id is in progress; other parameters conflict.
    assert_eq!(code(bank.get_operation(get_op("a", "w")).await), Code::Aborted);
    assert_eq!(
        code(bank.withdraw(waiting("a", 49, "w")).await),
        Code::AlreadyExists
    );
    assert_eq!(ok(bank.deposit(deposit("a", 30, "")).await).sequence, 1);
    assert_eq!(ok(bank.deposit(deposit("a", 30, "")).await).sequence, 2);
    let woken = join(waiter).await.unwrap();
    assert_eq!(
        (woken.outcome(), woken.balance, woken.sequence),
        (Outcome::Approved, 10, 3)
    );
    assert_eq!(
        ok(bank.get_operation(get_op("a", "w")).await),
        OperationResult {
            replayed: true,
            ..woken
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opposite_transfers_at_once_all_complete() {
    const EACH_WAY: u64 = 40;
    let mut s = start(config(|c| c.ledger.processing_delay = Duration::from_millis(1))).await;
    open_all(&mut s.bank, &[("a", 1_000), ("b", 1_000)]).await;
    let calls = (0..2 * EACH_WAY).map(|i| {
        let mut bank = s.bank.clone();
        let request = if i % 2 == 0 {
            transfer("a", "b", 3, "")
        } else {
            transfer("b", "a", 2, "")
        };
        async move { bank.transfer(request).await.map(Response::into_inner) }
    });
    let results = tokio::time::timeout(PATIENCE, join_all(calls))
        .await
        .expect("no deadlock");
    for r in results {
        assert_eq!(r.unwrap().outcome(), Outcome::Approved);
    }
    assert_eq!(state(&mut s.bank, "a").await, (1_000 - EACH_WAY, 2 * EACH_WAY));
    assert_eq!(state(&mut s.bank, "b").await, (1_000 + EACH_WAY, 2 * EACH_WAY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_abandoned_at_the_account_gate_is_not_applied() {
    // One op per account on the blocking pool: B expires queued at the gate (the fence records it).
    abandoned_call_is_not_applied(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_abandoned_waiting_for_the_lock_is_not_applied() {
    // Two ops per account on the blocking pool: B expires blocked on the lock (the ledger records it).
    abandoned_call_is_not_applied(2).await;
}

/// A holds the account's lock through a long delay; B, sent meanwhile with a
/// short timeout, expires while queued behind it, then a copy of B without a
/// timeout follows. Neither B nor its copy may take effect. The scheduler
/// could still let B in before A, so each attempt checks that premise and may retry.
async fn abandoned_call_is_not_applied(max_blocking_per_account: usize) {
    let mut s = start(config(|c| {
        c.ledger.processing_delay = Duration::from_millis(400);
        c.ledger.max_blocking_per_account = max_blocking_per_account;
    }))
    .await;
    for attempt in 0..4 {
        let id = format!("acct{attempt}");
        open_all(&mut s.bank, &[(&id, 100)]).await;
        let mut bank = s.bank.clone();
        let a = tokio::spawn({
            let request = deposit(&id, 10, "a");
            async move { bank.deposit(request).await.map(Response::into_inner) }
        });
        if !lock_is_held(&mut s.bank, &id).await {
            join(a).await.unwrap();
            continue;
        }
        let b = s
            .bank
            .deposit(timed(deposit(&id, 1, "b"), Duration::from_millis(100)))
            .await;
        let late = ok(s.bank.deposit(deposit(&id, 1, "b")).await);
        let a = join(a).await.unwrap();
        if a.sequence != 1 || late.outcome() != Outcome::NotApplied {
            eprintln!("attempt {attempt}: A {a:?}, B {b:?}, late copy of B {late:?}");
            continue;
        }
        assert!(matches!(code(b), Code::Cancelled | Code::DeadlineExceeded));
        assert!(late.replayed, "{late:?}");
        let stored = ok(s.bank.get_operation(get_op(&id, "b")).await);
        assert_eq!((stored.outcome(), stored.sequence), (Outcome::NotApplied, 0));
        assert_eq!(state(&mut s.bank, &id).await, (110, 1), "only A was applied");
        return;
    }
    panic!("the abandoned call (or its late copy) was applied in every attempt");
}

/// True once a balance read of `id` cannot finish within 50ms (the lock is
/// held); false if the read shows an op already completed.
async fn lock_is_held(bank: &mut Bank, id: &str) -> bool {
    for _ in 0..1_000 {
        match bank
            .get_balance(timed(get_balance(id), Duration::from_millis(50)))
            .await
        {
            Ok(r) if r.get_ref().sequence == 0 => continue,
            Ok(_) => return false,
            Err(status) => {
                assert!(
                    matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded),
                    "{status:?}"
                );
                return true;
            }
        }
    }
    panic!("the first op never reached the account");
}

/// Balance 100, withdrawals of 70 and 80 sent at once; results by sequence.
async fn seed_race(bank: &Bank, id: &str) -> Vec<OperationResult> {
    open_all(&mut bank.clone(), &[(id, 100)]).await;
    let calls = [70, 80].map(|amount| {
        let mut bank = bank.clone();
        let request = withdraw(id, amount, "");
        async move { ok(bank.withdraw(request).await) }
    });
    let mut results = join_all(calls).await;
    results.sort_by_key(|r| r.sequence);
    results
}

fn approvals(results: &[OperationResult]) -> usize {
    results
        .iter()
        .filter(|r| r.outcome() == Outcome::Approved)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_scenario_approves_one_withdrawal_with_the_lock_and_both_without() {
    let delay = Duration::from_millis(300);
    let mut safe = start(config(|c| c.ledger.processing_delay = delay)).await;
    let results = seed_race(&safe.bank, "seed").await;
    assert_eq!(approvals(&results), 1, "{results:?}");
    assert_eq!(results.iter().map(|r| r.sequence).collect::<Vec<_>>(), [1, 2]);
    let balance = state(&mut safe.bank, "seed").await.0;
    assert!(balance == 30 || balance == 20, "{balance}");

    let mut racy = start(config(|c| {
        c.ledger.processing_delay = delay;
        c.ledger.unsafe_no_lock = true;
    }))
    .await;
    // Both must read before either writes back; retry if the scheduler split them.
    for attempt in 0..3 {
        let id = format!("seed{attempt}");
        let results = seed_race(&racy.bank, &id).await;
        if approvals(&results) == 2 {
            let balance = state(&mut racy.bank, &id).await.0;
            assert!(balance == 30 || balance == 20, "a lost update leaves {balance}");
            return;
        }
    }
    panic!("unsafe_no_lock never approved both withdrawals");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_serving_for_the_bank_and_the_server() {
    let mut s = start(config(|_| {})).await;
    for service in ["bank.v1.Bank", ""] {
        let r = ok(s
            .health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await);
        assert_eq!(r.status(), ServingStatus::Serving, "{service:?}");
    }
    let unknown = s
        .health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await;
    assert_eq!(code(unknown), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1_and_v1alpha_list_the_bank_and_health_services() {
    use tonic::codegen::http::uri::PathAndQuery;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::{ServerReflectionRequest, ServerReflectionResponse};

    let s = start(config(|_| {})).await;
    // v1alpha has the same messages as v1 under another package name.
    for package in ["grpc.reflection.v1", "grpc.reflection.v1alpha"] {
        let path =
            PathAndQuery::try_from(format!("/{package}.ServerReflection/ServerReflectionInfo")).unwrap();
        let list = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let codec = tonic_prost::ProstCodec::<ServerReflectionRequest, ServerReflectionResponse>::default();
        let mut grpc = tonic::client::Grpc::new(s.channel.clone());
        grpc.ready().await.unwrap();
        let mut answers = ok(grpc
            .streaming(Request::new(tokio_stream::iter([list])), path, codec)
            .await);
        let answer = answers.message().await.unwrap().expect("one answer");
        let Some(MessageResponse::ListServicesResponse(services)) = answer.message_response else {
            panic!("{package}: unexpected answer {answer:?}");
        };
        let names: Vec<_> = services.service.iter().map(|s| s.name.as_str()).collect();
        for expected in ["bank.v1.Bank", "grpc.health.v1.Health"] {
            assert!(names.contains(&expected), "{package} lists {names:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_after_the_grace_period_even_with_a_call_still_running() {
    let mut s = start(config(|c| {
        c.ledger.max_wait = Duration::from_secs(10);
        c.shutdown_grace = Duration::from_millis(100);
    }))
    .await;
    open_all(&mut s.bank, &[("a", 0)]).await;
    // Stays in flight for max_wait; it ends with the test's runtime, which cancels it.
    let _stuck = start_waiter(&s.bank, waiting("a", 5, "w")).await;
    let started = std::time::Instant::now();
    s.trigger_shutdown();
    s.stopped().await.expect("run returns Ok after the grace period");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "run waited for the stuck call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_refuses_new_calls_and_lets_in_flight_ones_finish() {
    let mut s = start(config(|c| {
        c.ledger.processing_delay = Duration::from_millis(100);
        c.ledger.max_wait = Duration::from_secs(1);
    }))
    .await;
    open_all(&mut s.bank, &[("a", 0)]).await;
    let mut watches = Vec::new();
    for service in ["bank.v1.Bank", ""] {
        let mut watch = ok(s
            .health
            .watch(HealthCheckRequest {
                service: service.into(),
            })
            .await);
        assert_eq!(
            watch.message().await.unwrap().unwrap().status(),
            ServingStatus::Serving
        );
        watches.push(watch);
    }
    // In flight: a withdrawal waiting for funds (it will time out, then take the
    // delay), and a withdrawal stream that has been answered once.
    let in_flight = start_waiter(&s.bank, waiting("a", 5, "w")).await;
    open_all(&mut s.bank, &[("s", 10)]).await;
    let (stream_tx, stream_rx) = tokio::sync::mpsc::channel(1);
    let requests = tokio_stream::wrappers::ReceiverStream::new(stream_rx);
    let mut answers = ok(s.bank.withdraw_stream(requests).await);
    stream_tx.send(withdraw("s", 1, "")).await.unwrap();
    assert_eq!(answers.message().await.unwrap().unwrap().balance, 9);

    s.trigger_shutdown();
    for watch in &mut watches {
        let next = tokio::time::timeout(PATIENCE, watch.message()).await.unwrap();
        assert_eq!(next.unwrap().unwrap().status(), ServingStatus::NotServing);
    }
    drop(watches);
    // The open stream takes no new work: its next request ends it with UNAVAILABLE.
    stream_tx.send(withdraw("s", 1, "")).await.unwrap();
    assert_eq!(code(answers.message().await), Code::Unavailable);
    drop((stream_tx, answers));
    let refused = s.bank.get_balance(get_balance("a")).await;
    let refused = refused.expect_err("new calls are refused");
    // UNAVAILABLE from the service, or the transport refusing a stream after GOAWAY.
    assert!(
        matches!(refused.code(), Code::Unavailable | Code::Cancelled),
        "{refused:?}"
    );

    let finished = join(in_flight).await.expect("the in-flight call completes");
    assert_eq!(
        (finished.outcome(), finished.sequence),
        (Outcome::InsufficientFunds, 1)
    );
    let addr = s.addr;
    s.stopped().await.expect("run returns Ok");
    assert!(connect(addr).await.is_err(), "nothing listens after run returned");
}
