//! The contract every ledger backend keeps, one test code run against each
//! backend in turn: memory, the journal of `--data-dir`, group commit
//! (`--batch-max`), and PostgreSQL, alone and with `--batch-max`, when
//! `BANK_TEST_DATABASE_URL` is set
//! (each PostgreSQL run gets a database of its own, so limits counted per
//! database are exact). A test here is written once, in `checks`, and
//! listed in `contract!`; it then runs on every backend of [`kinds`].

#[allow(dead_code, unused_imports)]
mod common;

#[path = "support/pg_url.rs"]
mod pg_url;

use std::path::PathBuf;

use bank_server::backend::pg::{DbSettings, Isolation};
use bank_server::ServerConfig;
use common::*;
use tonic::metadata::MetadataValue;

/// The backends every contract test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Memory,
    DataDir,
    Batched,
    Postgres,
    /// PostgreSQL with `--batch-max 8`: group commit (`bank_batch`).
    PgBatched,
}

/// Every backend this run can reach (PostgreSQL only with its URL).
fn kinds() -> Vec<Kind> {
    let mut kinds = vec![Kind::Memory, Kind::DataDir, Kind::Batched];
    if pg_url::url().is_some() {
        kinds.push(Kind::Postgres);
        kinds.push(Kind::PgBatched);
    }
    kinds
}

/// Where one backend's run keeps its ledger: a temporary directory (the
/// journal, the token file) and, for PostgreSQL, a fresh database.
struct Place {
    kind: Kind,
    dir: tempfile::TempDir,
    database: Option<String>,
}

impl Place {
    async fn new(kind: Kind) -> Place {
        let database = match kind {
            Kind::Postgres | Kind::PgBatched => Some(fresh_database().await),
            _ => None,
        };
        Place {
            kind,
            dir: tempfile::tempdir().unwrap(),
            database,
        }
    }

    /// A server on this backend, configured as `tweak` says too.
    async fn start(&self, tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
        start(config(|c| {
            match self.kind {
                Kind::Memory | Kind::Postgres => {}
                Kind::DataDir => c.data_dir = Some(self.dir.path().join("data")),
                Kind::Batched | Kind::PgBatched => c.ledger.batch_max = 8,
            }
            c.database = self.database.clone().map(|url| DbSettings {
                url,
                pool_size: 4,
                isolation: Isolation::ReadCommitted,
            });
            tweak(c);
        }))
        .await
    }

    /// [`Place::start`] with `/metrics` served too: the bank, the metrics address, the stop.
    async fn start_with_metrics(&self) -> (Bank, std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        self.start_with_metrics_in(|_| {}).await
    }

    /// [`Place::start_with_metrics`], configured as `tweak` says too.
    async fn start_with_metrics_in(
        &self,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> (Bank, std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (grpc_addr, metrics_addr) = (grpc.local_addr().unwrap(), metrics.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let listeners = bank_server::Listeners {
            grpc,
            metrics: Some(metrics),
        };
        let config = config(|c| {
            c.ledger.batch_max = if self.batched() { 8 } else { 1 };
            c.data_dir = (self.kind == Kind::DataDir).then(|| self.dir.path().join("data-metrics"));
            c.database = self.database.clone().map(|url| DbSettings {
                url,
                pool_size: 4,
                isolation: Isolation::ReadCommitted,
            });
            tweak(c);
        });
        tokio::spawn(bank_server::serve(listeners, config, async {
            let _ = stopped.await;
        }));
        let channel = connect(grpc_addr).await.unwrap();
        (BankClient::new(channel), metrics_addr, stop)
    }

    /// Whether this backend runs with `--batch-max 8`.
    fn batched(&self) -> bool {
        matches!(self.kind, Kind::Batched | Kind::PgBatched)
    }

    /// Whether the ledger is in PostgreSQL.
    fn in_postgres(&self) -> bool {
        matches!(self.kind, Kind::Postgres | Kind::PgBatched)
    }

    /// A token file naming alice and bob.
    fn tokens(&self) -> PathBuf {
        let path = self.dir.path().join("tokens");
        std::fs::write(&path, format!("alice {ALICE}\nbob {BOB}\n")).unwrap();
        path
    }
}

/// A new, empty database on the test server (the URL's own database
/// replaced by it); the ledger's schema is made by the server that opens it.
async fn fresh_database() -> String {
    let url = pg_url::url().expect("PostgreSQL runs only with its URL");
    let name = format!("bank_contract_{:016x}", rand::random::<u64>());
    let create = format!("CREATE DATABASE {name}");
    let admin = url.clone();
    tokio::task::spawn_blocking(move || {
        let mut client =
            postgres::Client::connect(&admin, postgres::NoTls).expect("the test database answers");
        client.batch_execute(&create).expect("a fresh database");
    })
    .await
    .unwrap();
    let (base, _) = url
        .rsplit_once('/')
        .expect("BANK_TEST_DATABASE_URL is a postgres:// URL with a database name");
    format!("{base}/{name}")
}

/// One test per contract check, each run on every backend in turn.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            for kind in kinds() {
                eprintln!("{}: {kind:?}", stringify!($name));
                checks::$name(&Place::new(kind).await).await;
            }
        }
    )*};
}

contract!(
    ops_follow_the_ledger_rules,
    repeated_ids_replay_and_get_operation_fences_late_copies,
    unknown_accounts_duplicates_and_overflow_have_their_codes,
    a_control_character_in_an_id_is_invalid_argument,
    only_the_owner_may_act_on_an_account,
    one_principal_cannot_take_every_account_slot,
    max_accounts_bounds_the_accounts,
    a_waiting_withdrawal_is_served_by_a_later_deposit,
    metrics_read_the_ledger,
    max_request_ids_forgets_the_oldest_ids,
    max_request_ids_leaves_a_principal_its_fair_share,
    an_op_is_one_round_trip,
    a_dropped_waiting_withdrawal_is_not_applied,
);

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-9876543210";

/// `message` sent with `authorization: Bearer token`.
fn as_<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    request
}

/// The body of `GET /metrics` at `addr`.
async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

/// The value of the series `series` (name with labels), 0 if absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

mod checks {
    use super::*;

    /// Waits until the server remembers at most `cap` ids: PostgreSQL
    /// forgets past the cap within a second (id_cap.rs), memory at once.
    async fn wait_for_the_cap(place: &Place, metrics: std::net::SocketAddr, cap: usize) {
        let patience = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while sample(&scrape(metrics).await, "bank_remembered_request_ids ") > cap as f64 {
            assert!(
                std::time::Instant::now() < patience,
                "{:?}: the cap never held",
                place.kind
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub async fn ops_follow_the_ledger_rules(place: &Place) {
        let mut s = place.start(|_| {}).await;
        let bank = &mut s.bank;
        open_all(bank, &[("a", 100), ("b", 0)]).await;
        let d = ok(bank.deposit(deposit("a", 10, "d1")).await);
        assert_eq!((d.outcome(), d.balance, d.sequence), (Outcome::Approved, 110, 1));
        let w = ok(bank.withdraw(withdraw("a", 500, "w1")).await);
        assert_eq!(
            (w.outcome(), w.balance, w.sequence),
            (Outcome::InsufficientFunds, 110, 2)
        );
        let t = ok(bank.transfer(transfer("a", "b", 60, "t1")).await);
        assert_eq!(
            (t.outcome(), t.balance, t.to_balance),
            (Outcome::Approved, 50, 60)
        );
        assert_eq!((t.sequence, t.to_sequence), (3, 1));
        let short = ok(bank.transfer(transfer("b", "a", 61, "t2")).await);
        assert_eq!(short.outcome(), Outcome::InsufficientFunds);
        assert_eq!(state(bank, "a").await, (50, 4));
        assert_eq!(state(bank, "b").await, (60, 2));
    }

    pub async fn repeated_ids_replay_and_get_operation_fences_late_copies(place: &Place) {
        let mut s = place.start(|_| {}).await;
        let bank = &mut s.bank;
        open_all(bank, &[("a", 100), ("b", 0)]).await;
        let first = ok(bank.deposit(deposit("a", 10, "d")).await);
        let again = ok(bank.deposit(deposit("a", 10, "d")).await);
        assert!(!first.replayed);
        assert_eq!(
            again,
            OperationResult {
                replayed: true,
                ..first
            }
        );
        let t = ok(bank.transfer(transfer("a", "b", 60, "t")).await);
        let t_again = ok(bank.transfer(transfer("a", "b", 60, "t")).await);
        assert_eq!(t_again, OperationResult { replayed: true, ..t });
        assert_eq!(state(bank, "a").await, (50, 2));
        assert_eq!(state(bank, "b").await, (60, 1));
        let fenced = ok(bank.get_operation(get_op("a", "lost")).await);
        assert_eq!(
            (fenced.outcome(), fenced.sequence, fenced.balance),
            (Outcome::NotApplied, 0, 0)
        );
        let late = ok(bank.withdraw(withdraw("a", 5, "lost")).await);
        assert_eq!((late.outcome(), late.replayed), (Outcome::NotApplied, true));
        assert_eq!(state(bank, "a").await, (50, 2), "the late copy was not applied");
    }

    pub async fn unknown_accounts_duplicates_and_overflow_have_their_codes(place: &Place) {
        let mut s = place.start(|_| {}).await;
        let bank = &mut s.bank;
        open_all(bank, &[("a", 100), ("full", u64::MAX - 1)]).await;
        let not_found = [
            code(bank.get_balance(get_balance("nobody")).await),
            code(bank.deposit(deposit("nobody", 1, "")).await),
            code(bank.withdraw(withdraw("nobody", 1, "")).await),
            code(bank.transfer(transfer("a", "nobody", 1, "")).await),
            code(bank.transfer(transfer("nobody", "a", 1, "")).await),
            code(bank.get_operation(get_op("nobody", "r")).await),
        ];
        assert_eq!(not_found, [Code::NotFound; 6]);
        assert_eq!(
            code(bank.open_account(open_req("a", 5)).await),
            Code::AlreadyExists
        );
        ok(bank.deposit(deposit("a", 10, "r1")).await);
        assert_eq!(
            code(bank.deposit(deposit("a", 11, "r1")).await),
            Code::AlreadyExists
        );
        assert_eq!(
            code(bank.withdraw(withdraw("a", 10, "r1")).await),
            Code::AlreadyExists
        );
        let reused = bank.transfer(transfer("a", "full", 10, "r1")).await;
        assert_eq!(code(reused), Code::AlreadyExists);
        assert_eq!(
            code(bank.deposit(deposit("full", 2, "o1")).await),
            Code::FailedPrecondition
        );
        let over = bank.transfer(transfer("a", "full", 2, "o2")).await;
        assert_eq!(code(over), Code::FailedPrecondition);
        assert_eq!(state(bank, "a").await, (110, 1));
        assert_eq!(state(bank, "full").await, (u64::MAX - 1, 0));
    }

    pub async fn a_control_character_in_an_id_is_invalid_argument(place: &Place) {
        let mut s = place.start(|_| {}).await;
        let bank = &mut s.bank;
        open_all(bank, &[("a", 100), ("b", 0)]).await;
        for bad in ["nul\0id", "\u{1}", "tab\tid", "del\u{7f}", "c1\u{85}x"] {
            let answers = [
                code(bank.open_account(open_req(bad, 1)).await),
                code(bank.get_balance(get_balance(bad)).await),
                code(bank.deposit(deposit(bad, 1, "r")).await),
                code(bank.deposit(deposit("a", 1, bad)).await),
                code(bank.withdraw(withdraw(bad, 1, "r")).await),
                code(bank.withdraw(withdraw("a", 1, bad)).await),
                code(bank.transfer(transfer(bad, "b", 1, "r")).await),
                code(bank.transfer(transfer("a", bad, 1, "r")).await),
                code(bank.transfer(transfer("a", "b", 1, bad)).await),
                code(bank.get_operation(get_op(bad, "r")).await),
                code(bank.get_operation(get_op("a", bad)).await),
                code(bank.get_operation(get_op("nobody", bad)).await),
            ];
            for (i, got) in answers.into_iter().enumerate() {
                assert_eq!(got, Code::InvalidArgument, "{bad:?}, call {i}");
            }
            let mut stream = ok(bank
                .withdraw_stream(tokio_stream::iter([withdraw("a", 1, bad)]))
                .await);
            assert_eq!(stream.message().await.unwrap_err().code(), Code::InvalidArgument);
        }
        assert_eq!(state(bank, "a").await, (100, 0), "nothing was applied");
        // Printable non-ASCII stays allowed.
        ok(bank.open_account(open_req("zürich-€", 1)).await);
    }

    pub async fn only_the_owner_may_act_on_an_account(place: &Place) {
        let tokens = place.tokens();
        let mut s = place.start(|c| c.auth_tokens = Some(tokens)).await;
        let bank = &mut s.bank;
        ok(bank.open_account(as_(ALICE, open_req("a", 100))).await);
        ok(bank.open_account(as_(BOB, open_req("b", 100))).await);
        for id in ["a", "nobody"] {
            let answers = [
                code(bank.get_balance(as_(BOB, get_balance(id))).await),
                code(bank.deposit(as_(BOB, deposit(id, 1, "d1"))).await),
                code(bank.withdraw(as_(BOB, withdraw(id, 1, "w1"))).await),
                code(bank.transfer(as_(BOB, transfer(id, "b", 1, "t1"))).await),
                code(bank.get_operation(as_(BOB, get_op(id, "o1"))).await),
            ];
            assert_eq!(answers, [Code::PermissionDenied; 5], "bob on {id}");
        }
        assert_eq!(
            code(bank.get_balance(get_balance("a")).await),
            Code::Unauthenticated
        );
        let paid = ok(bank.transfer(as_(BOB, transfer("b", "a", 5, "t2"))).await);
        assert_eq!(paid.to_balance, 105, "anyone may pay into alice's account");
        assert_eq!(
            ok(bank.get_balance(as_(ALICE, get_balance("a"))).await).balance,
            105
        );
    }

    pub async fn one_principal_cannot_take_every_account_slot(place: &Place) {
        let tokens = place.tokens();
        let mut s = place
            .start(|c| {
                c.auth_tokens = Some(tokens);
                c.ledger.max_accounts = 10;
                c.ledger.max_accounts_per_principal = 3;
            })
            .await;
        let bank = &mut s.bank;
        for i in 0..3 {
            ok(bank.open_account(as_(BOB, open_req(&format!("b{i}"), 1))).await);
        }
        let refused = bank.open_account(as_(BOB, open_req("b3", 1))).await.unwrap_err();
        assert_eq!(refused.code(), Code::ResourceExhausted);
        assert!(
            refused.message().contains("--max-accounts-per-principal"),
            "{}",
            refused.message()
        );
        // Nothing changed: the refused id is still free, and alice has her own room.
        ok(bank.open_account(as_(ALICE, open_req("b3", 7))).await);
        ok(bank.open_account(as_(ALICE, open_req("a1", 7))).await);
        assert_eq!(
            ok(bank.get_balance(as_(ALICE, get_balance("b3"))).await).balance,
            7
        );
    }

    pub async fn max_accounts_bounds_the_accounts(place: &Place) {
        let mut s = place.start(|c| c.ledger.max_accounts = 2).await;
        let bank = &mut s.bank;
        open_all(bank, &[("a", 1), ("b", 1)]).await;
        let refused = bank.open_account(open_req("c", 1)).await.unwrap_err();
        assert_eq!(refused.code(), Code::ResourceExhausted);
        assert!(
            refused.message().contains("--max-accounts"),
            "{}",
            refused.message()
        );
        assert_eq!(code(bank.get_balance(get_balance("c")).await), Code::NotFound);
    }

    pub async fn a_waiting_withdrawal_is_served_by_a_later_deposit(place: &Place) {
        let mut s = place.start(|_| {}).await;
        open_all(&mut s.bank, &[("a", 0)]).await;
        let mut waiter_bank = s.bank.clone();
        let waiter = tokio::spawn(async move { waiter_bank.withdraw(waiting("a", 30, "w")).await });
        for (i, amount) in [10, 10, 10].into_iter().enumerate() {
            ok(s.bank.deposit(deposit("a", amount, &format!("d{i}"))).await);
        }
        let w = ok(join(waiter).await);
        assert_eq!((w.outcome(), w.balance), (Outcome::Approved, 0));
        assert_eq!(state(&mut s.bank, "a").await, (0, 4));
    }

    pub async fn max_request_ids_forgets_the_oldest_ids(place: &Place) {
        let (mut bank, metrics, _stop) = place
            .start_with_metrics_in(|c| c.ledger.max_request_ids = 5)
            .await;
        open_all(&mut bank, &[("a", 0), ("b", 0)]).await;
        for i in 0..12 {
            let id = if i % 2 == 0 { "a" } else { "b" };
            ok(bank.deposit(deposit(id, 1, &format!("r{i}"))).await);
        }
        wait_for_the_cap(place, metrics, 5).await;
        assert_eq!(
            code(bank.get_operation(get_op("a", "r0")).await),
            Code::FailedPrecondition
        );
        assert_eq!(ok(bank.get_operation(get_op("b", "r11")).await).sequence, 6);
        assert_eq!(
            state(&mut bank, "a").await,
            (6, 6),
            "forgetting ids changes no money"
        );
    }

    /// Issue 18's rule on every backend: past the cap, the ids forgotten are
    /// the oldest of the principal that remembers the most, so bob's flood
    /// never ages out alice's few (2 ≤ cap ÷ 2 principals).
    pub async fn max_request_ids_leaves_a_principal_its_fair_share(place: &Place) {
        const CAP: usize = 6;
        let tokens = place.tokens();
        let (mut bank, metrics, _stop) = place
            .start_with_metrics_in(|c| {
                c.auth_tokens = Some(tokens);
                c.ledger.max_request_ids = CAP;
            })
            .await;
        ok(bank.open_account(as_(ALICE, open_req("a", 0))).await);
        ok(bank.open_account(as_(BOB, open_req("b", 0))).await);
        for i in 0..2 {
            ok(bank.deposit(as_(ALICE, deposit("a", 1, &format!("a{i}")))).await);
        }
        for i in 0..20 {
            ok(bank.deposit(as_(BOB, deposit("b", 1, &format!("b{i}")))).await);
        }
        wait_for_the_cap(place, metrics, CAP).await;
        for (i, id) in ["a0", "a1"].into_iter().enumerate() {
            let kept = bank.get_operation(as_(ALICE, get_op("a", id))).await;
            assert_eq!(
                ok(kept).sequence,
                i as u64 + 1,
                "{:?}: bob's flood aged out alice's {id}",
                place.kind
            );
        }
        assert_eq!(
            code(bank.get_operation(as_(BOB, get_op("b", "b0"))).await),
            Code::FailedPrecondition,
            "{:?}: bob's oldest id is the one forgotten",
            place.kind
        );
        assert_eq!(
            ok(bank.get_operation(as_(BOB, get_op("b", "b19"))).await).sequence,
            20
        );
        let a = ok(bank.get_balance(as_(ALICE, get_balance("a"))).await);
        assert_eq!((a.balance, a.sequence), (2, 2), "forgetting ids changes no money");
    }

    /// Without a processing delay, a deposit, a withdrawal and a transfer
    /// keep the ledger's rules, and on PostgreSQL each is one statement (one
    /// round trip: a plpgsql function, not BEGIN, lock, look-up, write,
    /// COMMIT), with `--batch-max` too (a batch is one `bank_batch` call).
    pub async fn an_op_is_one_round_trip(place: &Place) {
        let (mut bank, metrics, _stop) = place
            .start_with_metrics_in(|c| c.ledger.processing_delay = std::time::Duration::ZERO)
            .await;
        open_all(&mut bank, &[("a", 100), ("b", 0)]).await;
        let statements = |text: &str| sample(text, "bank_db_statement_seconds_count ");
        let before = statements(&scrape(metrics).await);
        let d = ok(bank.deposit(deposit("a", 10, "d")).await);
        let w = ok(bank.withdraw(withdraw("a", 20, "w")).await);
        let t = ok(bank.transfer(transfer("a", "b", 30, "t")).await);
        assert_eq!((d.balance, d.sequence, w.balance, w.sequence), (110, 1, 90, 2));
        assert_eq!(
            (t.balance, t.sequence, t.to_balance, t.to_sequence),
            (60, 3, 30, 1)
        );
        let spent = statements(&scrape(metrics).await) - before;
        let want = if place.in_postgres() { 3.0 } else { 0.0 };
        assert_eq!(spent, want, "{:?}: statements for three ops", place.kind);
    }

    /// A waiting withdrawal whose client goes away ends at once (the
    /// waiting gauge falls), NOT_APPLIED: a later deposit does not pay it.
    pub async fn a_dropped_waiting_withdrawal_is_not_applied(place: &Place) {
        let (mut bank, metrics, _stop) = place.start_with_metrics().await;
        open_all(&mut bank, &[("a", 0)]).await;
        let gauge = |text: &str| sample(text, "bank_waiting_withdrawals ");
        let mut waiter_bank = bank.clone();
        let waiter = tokio::spawn(async move { waiter_bank.withdraw(waiting("a", 30, "w")).await });
        let patience = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while gauge(&scrape(metrics).await) < 1.0 {
            assert!(
                std::time::Instant::now() < patience,
                "{:?}: it never waited",
                place.kind
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waiter.abort();
        while gauge(&scrape(metrics).await) > 0.0 {
            assert!(
                std::time::Instant::now() < patience,
                "{:?}: the wait outlived its call",
                place.kind
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        ok(bank.deposit(deposit("a", 30, "d")).await);
        let w = ok(bank.get_operation(get_op("a", "w")).await);
        assert_eq!(w.outcome(), Outcome::NotApplied, "{:?}", place.kind);
        assert_eq!(
            state(&mut bank, "a").await.0,
            30,
            "{:?}: the dropped withdrawal took nothing",
            place.kind
        );
    }

    pub async fn metrics_read_the_ledger(place: &Place) {
        let (mut bank, metrics, _stop) = place.start_with_metrics().await;
        open_all(&mut bank, &[("a", 10), ("b", 0), ("c", 0)]).await;
        ok(bank.deposit(deposit("b", 1, "d1")).await);
        ok(bank.withdraw(withdraw("a", 1, "w1")).await);
        let text = scrape(metrics).await;
        assert_eq!(sample(&text, "bank_open_accounts "), 3.0, "{:?}", place.kind);
        assert_eq!(
            sample(&text, "bank_remembered_request_ids "),
            2.0,
            "{:?}",
            place.kind
        );
        let statements = sample(&text, "bank_db_statement_seconds_count ");
        let pooled = sample(&text, "bank_db_pool_connections{state=\"idle\"} ")
            + sample(&text, "bank_db_pool_connections{state=\"in_use\"} ");
        if place.in_postgres() {
            assert!(statements >= 4.0 && pooled >= 1.0, "{text}");
        } else {
            assert_eq!((statements, pooled), (0.0, 0.0));
        }
        assert!(text.contains("bank_db_serialization_retries_total 0"), "{text}");
    }
}

/// The suite's own premise: it reaches every backend it says it does.
#[test]
fn the_suite_runs_on_memory_the_journal_and_group_commit_at_least() {
    let kinds = kinds();
    for kind in [Kind::Memory, Kind::DataDir, Kind::Batched] {
        assert!(kinds.contains(&kind));
    }
    assert_eq!(kinds.contains(&Kind::Postgres), pg_url::url().is_some());
    assert_eq!(kinds.contains(&Kind::PgBatched), pg_url::url().is_some());
}
