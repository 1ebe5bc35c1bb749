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
