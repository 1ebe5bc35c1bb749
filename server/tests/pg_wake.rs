//! A withdrawal waiting for funds on one server is woken by a deposit made
//! through another, promptly (LISTEN/NOTIFY, no polling): over 20 trials the
//! waiter's answer comes at most 5 ms (median) and 8 ms (p90) after the
//! deposit's. Two `PgLedger`s on one database stand for the two servers.
//! The deposit is made once the waiter is registered for the hand-off
//! (`hand_off.rs`): the deposit applies it, and the waiter answers from the
//! deposit's commit.
//! Needs `BANK_TEST_DATABASE_URL` (skipped with a message without it).

use std::thread;
use std::time::{Duration, Instant};

use bank_server::backend::ledger::{CallContext, Deposit, LedgerConfig, Outcome, Withdrawal};
use bank_server::backend::pg::{DbSettings, Isolation, PgLedger};

#[path = "support/pg_url.rs"]
mod pg_url;

const TRIALS: usize = 20;
const WARM_UP: usize = 3;

fn server(url: &str) -> PgLedger {
    let settings = DbSettings {
        url: url.to_owned(),
        pool_size: 4,
        isolation: Isolation::ReadCommitted,
    };
    let config = LedgerConfig {
        processing_delay: Duration::ZERO,
        ..LedgerConfig::default()
    };
    PgLedger::open(&settings, &config)
        .expect("the test database opens")
        .0
}

/// Whether a withdrawal on `id` is registered for the hand-off (it is, a
/// look after it counts as waiting: the deposit is then made to wait until
/// it has, so that every trial measures the same path).
fn registered(id: &str) -> bool {
    let url = pg_url::url().expect("the URL");
    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("the test database answers");
    let row = client
        .query_one("SELECT count(*) FROM bank_waiters WHERE account_id = $1", &[&id])
        .expect("bank_waiters (schema version 5)");
    row.get::<_, i64>(0) > 0
}

/// How long after the deposit's answer the waiter's answer came.
fn one_trial(a: &'static PgLedger, b: &PgLedger, trial: usize) -> Duration {
    let id = format!("wake-{trial}-{:016x}", rand::random::<u64>());
    a.open_account(&id, 0, None).unwrap();
    let waiter = {
        let id = id.clone();
        thread::spawn(move || {
            let w = Withdrawal {
                account_id: id,
                amount: 10,
                request_id: "w".into(),
                wait_for_funds: true,
            };
            let done = a.withdraw(&w, &mut CallContext::detached());
            (done, Instant::now())
        })
    };
    let patience = Instant::now() + Duration::from_secs(10);
    while a.waiting_withdrawals() == 0 || !registered(&id) {
        assert!(Instant::now() < patience, "the withdrawal never waited");
        thread::sleep(Duration::from_millis(1));
    }
    let deposit = Deposit {
        account_id: id,
        amount: 10,
        request_id: "d".into(),
    };
    b.deposit(&deposit, &CallContext::detached()).unwrap();
    let deposited = Instant::now();
    let (done, answered) = waiter.join().unwrap();
    assert_eq!(done.unwrap().outcome, Outcome::Approved);
    answered.saturating_duration_since(deposited)
}

#[test]
fn a_waiter_is_woken_within_milliseconds_by_a_deposit_through_another_server() {
    let Some(url) = pg_url::url() else { return };
    let a: &'static PgLedger = Box::leak(Box::new(server(&url)));
    let b = server(&url);
    // Untimed: the pools and the listener connect during the first trials.
    for t in 0..WARM_UP {
        one_trial(a, &b, t);
    }
    let mut lags: Vec<Duration> = (WARM_UP..WARM_UP + TRIALS).map(|t| one_trial(a, &b, t)).collect();
    eprintln!("in trial order: {lags:?}");
    lags.sort();
    let (median, p90) = (lags[TRIALS / 2], lags[TRIALS * 9 / 10]);
    eprintln!("wake-up after the deposit's answer: median {median:?}, p90 {p90:?}, all {lags:?}");
    assert!(median <= Duration::from_millis(5), "median {median:?}");
    assert!(p90 <= Duration::from_millis(8), "p90 {p90:?}");
}
