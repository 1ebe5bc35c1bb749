//! `/metrics` over real HTTP after real gRPC calls: first applications are
//! counted by method and outcome, replays and GetOperation are not, errors
//! are counted by code, and the state gauges and process metrics are there.

#[allow(dead_code, unused_imports)]
mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A server with `/metrics` on its own port; returns it and that port's address.
async fn start_with_metrics() -> (Bank, std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    start_with_metrics_in(config(|_| {})).await
}

/// [`start_with_metrics`] with `config`.
async fn start_with_metrics_in(
    config: bank_server::ServerConfig,
) -> (Bank, std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (grpc_addr, metrics_addr) = (grpc.local_addr().unwrap(), metrics.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let listeners = bank_server::Listeners {
        grpc,
        metrics: Some(metrics),
    };
    tokio::spawn(bank_server::serve(listeners, config, async {
        let _ = stopped.await;
    }));
    let channel = connect(grpc_addr).await.unwrap();
    (BankClient::new(channel), metrics_addr, stop)
}

/// The body of `GET path` over HTTP/1.0, with its status line.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(PATIENCE, stream.read_to_string(&mut out))
        .await
        .expect("scrape answers")
        .unwrap();
    out
}

/// The value of the sample `line_prefix` (name with labels), 0 if absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_first_applications_and_errors() {
    let (mut bank, metrics, _stop) = start_with_metrics().await;
    open_all(&mut bank, &[("a", 10), ("b", 0)]).await;
    ok(bank.withdraw(withdraw("a", 4, "w1")).await);
    ok(bank.withdraw(withdraw("a", 4, "w1")).await); // a replay
    ok(bank.withdraw(withdraw("a", 100, "w2")).await); // insufficient funds
    ok(bank.deposit(deposit("b", 3, "d1")).await);
    ok(bank.transfer(transfer("a", "b", 1, "t1")).await);
    ok(bank.get_operation(get_op("a", "w1")).await);
    ok(bank.get_operation(get_op("a", "never")).await); // fenced: not an operation
    assert_eq!(
        code(bank.get_balance(get_balance("nobody")).await),
        Code::NotFound
    );
    let mut stream = ok(bank
        .withdraw_stream(tokio_stream::iter([withdraw("b", 1, "s1")]))
        .await);
    while stream.message().await.unwrap().is_some() {}

    let text = http_get(metrics, "/metrics").await;
    assert!(
        text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"),
        "{text}"
    );
    let ops = |m: &str, o: &str| {
        sample(
            &text,
            &format!("bank_operations_total{{method=\"{m}\",outcome=\"{o}\"}}"),
        )
    };
    assert_eq!(ops("Withdraw", "approved"), 1.0, "the replay is not counted");
    assert_eq!(ops("Withdraw", "insufficient_funds"), 1.0);
    assert_eq!(ops("Deposit", "approved"), 1.0);
    assert_eq!(ops("Transfer", "approved"), 1.0);
    assert_eq!(ops("WithdrawStream", "approved"), 1.0);
    assert_eq!(
        ops("GetOperation", "not_applied"),
        0.0,
        "GetOperation answers are not operations"
    );
    let not_found = "bank_rpc_errors_total{code=\"NotFound\",method=\"GetBalance\"}";
    assert_eq!(sample(&text, not_found), 1.0, "{text}");
    assert_eq!(sample(&text, "bank_open_accounts"), 2.0);
    assert_eq!(
        sample(&text, "bank_rpc_duration_seconds_count{method=\"Withdraw\"}"),
        3.0
    );
    for name in [
        "bank_inflight_calls",
        "bank_lock_wait_seconds_count",
        "bank_lock_hold_seconds_count",
    ] {
        assert!(text.contains(name), "{name} missing");
    }
    #[cfg(target_os = "linux")]
    assert!(text.contains("process_resident_memory_bytes"), "process metrics");
    assert!(http_get(metrics, "/other").await.contains(" 404 "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_ledger_reports_its_syncs() {
    let dir = std::env::temp_dir().join(format!("bank-metrics-durable-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut bank, metrics, stop) = start_with_metrics_in(config(|c| c.data_dir = Some(dir.clone()))).await;
    open_all(&mut bank, &[("d", 0)]).await;
    for i in 0..5 {
        ok(bank.deposit(deposit("d", 1, &format!("d{i}"))).await);
    }
    let text = http_get(metrics, "/metrics").await;
    assert!(sample(&text, "bank_ledger_syncs_total") >= 1.0, "{text}");
    assert!(
        sample(&text, "bank_ledger_synced_records_total") >= 6.0,
        "an open and five deposits"
    );
    drop((bank, stop));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_server_follows_prometheus_conventions() {
    let (_bank, metrics, _stop) = start_with_metrics().await;
    let text = http_get(metrics, "/metrics").await;
    let body = text.split_once("\r\n\r\n").map_or(text.as_str(), |(_, b)| b);
    let mut families = 0;
    for name in sample_names(body) {
        let family = family_of(body, &name);
        let kind = body
            .lines()
            .find_map(|l| l.strip_prefix(&format!("# TYPE {family} ")))
            .unwrap_or_else(|| panic!("no # TYPE for {name}"));
        assert!(
            body.contains(&format!("# HELP {family} ")),
            "no # HELP for {name}"
        );
        if kind == "counter" {
            assert!(family.ends_with("_total"), "counter {family} must end in _total");
        }
        families += 1;
    }
    assert!(families > 20, "{body}");
    // Every error series a call can produce is there before any call: a
    // rate() over it works from the first error on.
    for method in bank_server::observe::metrics::METHODS {
        for code in bank_server::observe::metrics::ERROR_CODES {
            let series = format!("bank_rpc_errors_total{{code=\"{code}\",method=\"{method}\"}} 0");
            assert!(body.lines().any(|l| l == series), "{series} missing");
        }
    }
    for series in [
        "bank_operations_total{method=\"Withdraw\",outcome=\"insufficient_funds\"} 0",
        "bank_connections_refused_total{listener=\"grpc\",reason=\"per_ip\"} 0",
        "bank_gate_wait_seconds_count 0",
    ] {
        assert!(body.lines().any(|l| l == series), "{series} missing");
    }
    #[cfg(target_os = "linux")]
    assert!(
        body.contains("# TYPE process_cpu_seconds_total counter"),
        "{body}"
    );
}

/// The names of the samples in a text exposition (labels cut off).
fn sample_names(body: &str) -> std::collections::BTreeSet<String> {
    let names = body.lines().filter(|l| !l.starts_with('#') && !l.is_empty());
    names
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_owned())
        .collect()
}

/// The family a sample belongs to: a histogram's `_bucket`, `_sum` and
/// `_count` samples belong to the histogram.
fn family_of(body: &str, name: &str) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if body.contains(&format!("# TYPE {base} histogram")) {
                return base.to_owned();
            }
        }
    }
    name.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_queued_at_the_gate_show_in_the_gate_wait_histogram() {
    // One op of an account runs at a time and each holds the lock 10 ms, so
    // of 6 deposits sent at once 5 wait at the gate, the last about 50 ms.
    let (mut bank, metrics, _stop) = start_with_metrics_in(config(|c| {
        c.ledger.processing_delay = std::time::Duration::from_millis(10);
        c.ledger.max_blocking_per_account = 1;
    }))
    .await;
    open_all(&mut bank, &[("hot", 0)]).await;
    let before = http_get(metrics, "/metrics").await;
    let count_before = sample(&before, "bank_gate_wait_seconds_count");
    let deposits = (0..6).map(|i| {
        let mut bank = bank.clone();
        async move { ok(bank.deposit(deposit("hot", 1, &format!("g{i}"))).await) }
    });
    futures::future::join_all(deposits).await;
    let text = http_get(metrics, "/metrics").await;
    let count = sample(&text, "bank_gate_wait_seconds_count") - count_before;
    let sum = sample(&text, "bank_gate_wait_seconds_sum");
    assert_eq!(count, 6.0, "every deposit passed the gate once: {text}");
    // 10 + 20 + 30 + 40 + 50 ms of waiting, give or take the runner's start.
    assert!(sum >= 0.1, "the queue shows as wait: sum {sum} s");
    let at_once = "bank_gate_wait_seconds_bucket{le=\"0.000001\"}";
    assert!(sample(&text, at_once) <= count_before + 1.0, "{text}");
}
