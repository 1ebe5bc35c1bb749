//! End-to-end checks of the report's newer parts, on the real binary: the
//! per-RPC breakdown, grouped errors and latency spread in `--json`,
//! `--stages`, the `--csv` and `--html` files parsed back, `compare` on
//! hand-written reports, and the flag combinations that are usage errors.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stress-client"))
        .args(args)
        .output()
        .expect("stress-client runs")
}

/// Runs a load with `flags` plus `--quiet --json`; exit code and report.
fn load(flags: &str, dir: &Path) -> (i32, Value) {
    let json = dir.join("report.json");
    let mut args: Vec<&str> = flags.split_whitespace().collect();
    let json_arg = json.to_str().expect("utf-8 temp path");
    args.extend(["--quiet", "--json", json_arg]);
    let out = run(&args);
    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("no report ({e}): {out:?}"));
    (
        out.status.code().expect("exited"),
        serde_json::from_str(&text).expect("JSON"),
    )
}

fn u(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} in {v:#}"))
}

#[test]
fn a_count_run_measures_every_op_and_breaks_them_down_per_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let flags =
        "--server-delay 0s --streams 4 --requests 400 --accounts 3 --read-ratio 0.5 --transfer-ratio 0.2";
    let (code, r) = load(flags, dir.path());
    assert_eq!(code, 0, "{r:#}");
    // No --warmup with --requests: every op is measured.
    assert_eq!(u(&r, "/latency_us/count"), 400);
    let money: u64 = ["withdraw_stream", "withdraw", "deposit", "transfer"]
        .iter()
        .map(|k| u(&r, &format!("/per_rpc/{k}/count")))
        .sum();
    assert_eq!(money, 400);
    assert_eq!(
        u(&r, "/per_rpc/withdraw/count"),
        0,
        "stream mode sends withdrawals on streams"
    );
    assert!(u(&r, "/per_rpc/withdraw_stream/latency_us/count") > 0);
    assert_eq!(u(&r, "/per_rpc/get_balance/count"), u(&r, "/extras/reads"));
    assert!(u(&r, "/latency_us/min") <= u(&r, "/latency_us/p50"));
    assert!(r["latency_us"]["stddev"].as_f64().is_some() && r["latency_us"]["mean"].as_f64().is_some());
    assert_eq!(r["errors"], Value::Array(vec![]));
}

#[test]
fn errors_are_grouped_by_code_and_message() {
    let dir = tempfile::tempdir().unwrap();
    let flags = "--server-delay 30ms --timeout 5ms --streams 4 --requests 40 --mode unary --read-ratio 0 --duplicate-ratio 0";
    let (_, r) = load(flags, dir.path());
    let groups = r["errors"].as_array().expect("errors is a list");
    let total: u64 = groups.iter().map(|g| g["count"].as_u64().unwrap()).sum();
    assert!(total > 0, "{r:#}");
    assert_eq!(total, u(&r, "/operations/errors"));
    assert!(groups
        .iter()
        .all(|g| g["code"].is_string() && g["message"].is_string()));
    assert!(
        groups
            .iter()
            .any(|g| g["code"] == "DEADLINE_EXCEEDED" || g["code"] == "CANCELLED"),
        "{groups:?}"
    );
}

#[test]
fn stages_are_reported_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = load("--server-delay 0s --stages 1s@100,1s@200..400", dir.path());
    assert_eq!(code, 0, "{r:#}");
    let stages = r["stages"].as_array().expect("stages");
    assert_eq!(stages.len(), 2);
    // Ops are counted by send time; a busy machine may shift a few across
    // the boundary, hence the tolerance (the two stages differ threefold).
    for (stage, want) in stages.iter().zip([100.0, 300.0]) {
        let ops = stage["ops"].as_f64().unwrap();
        assert!((ops - want).abs() <= want * 0.25, "{stage}");
        assert_eq!(stage["duration_s"], 1.0);
        assert!(stage["rate_achieved"].as_f64().unwrap() > 0.0);
        assert!(stage["latency_us"]["p99"].as_u64().is_some());
    }
    assert_eq!(stages[1]["rate_requested"], 300.0);
    assert_eq!(stages[1]["rate_to"], 400.0);
    assert_eq!(r["rate"]["requested"], 200.0);
}

#[test]
fn contradicting_or_ignored_flags_are_usage_errors() {
    for line in [
        "--stages 1s@10 --rate 5",
        "--stages 1s@10 --duration 3s",
        "--stages 1s@10 --requests 5",
        "--stages 1s@x",
        "--target http://127.0.0.1:1 --server-delay 5ms",
        "--target http://127.0.0.1:1 --server-unsafe-no-lock",
    ] {
        let out = run(&line.split_whitespace().collect::<Vec<_>>());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{line}: {stderr}");
        assert!(stderr.contains("--"), "{line}: {stderr}");
    }
}

fn report_file(dir: &Path, name: &str, throughput: f64, p99: u64) -> String {
    let report = serde_json::json!({
        "throughput_ops_per_s": throughput,
        "latency_us": {"p50": 100, "p90": 200, "p99": p99, "p999": 900, "p9999": 990, "max": 1000},
        "operations": {"errors": 0},
        "consistency": {"verdict": "passed"},
    });
    let path = dir.join(name);
    std::fs::write(&path, report.to_string()).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn compare_prints_ratios_and_gates_regressions() {
    let dir = tempfile::tempdir().unwrap();
    let a = report_file(dir.path(), "a.json", 1000.0, 500);
    let b = report_file(dir.path(), "b.json", 900.0, 600);
    let out = run(&["compare", &a, &b]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("0.900") && stdout.contains("1.200"), "{stdout}");
    assert_eq!(
        run(&["compare", &a, &b, "--fail-if-slower", "30"]).status.code(),
        Some(0)
    );
    let gated = run(&["compare", &a, &b, "--fail-if-slower", "15"]);
    assert_eq!(gated.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gated.stdout).contains("p99 rose"));
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"throughput_ops_per_s\": 1").unwrap();
    let bad = run(&["compare", &a, broken.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("broken.json"));
    let missing = run(&["compare", &a, "/nonexistent/b.json"]);
    assert_eq!(missing.status.code(), Some(2));
}

/// One worker, one op in flight, 5 ms per op: at most 200 ops/s of the
/// 1,000 asked for. The report says so, and why, instead of falling behind
/// silently; the scheduled sends' lateness is reported.
#[test]
fn a_generator_that_falls_behind_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = run(&[
        "--server-delay",
        "5ms",
        "--accounts",
        "1",
        "--streams",
        "1",
        "--connections",
        "1",
        "--rate",
        "1000",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let behind = "of 1000 requested: all 1 workers busy: add --streams";
    let warnings = r["warnings"].as_array().expect("warnings");
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains(behind))),
        "{r:#}"
    );
    assert!(stderr.contains("WARNING") && stderr.contains(behind), "{stderr}");
    assert!(
        stdout.contains("WARNING") && stdout.contains("schedule        sends left late"),
        "{stdout}"
    );
    // Sends waited for the one worker: far behind their schedule.
    assert!(u(&r, "/schedule/lateness_us/max") > 100_000, "{r:#}");
    assert!(u(&r, "/schedule/lateness_us/count") > 0);
}

#[test]
fn html_and_csv_are_written_and_parse_back() {
    let dir = tempfile::tempdir().unwrap();
    let (html, csv) = (dir.path().join("r.html"), dir.path().join("r.csv"));
    let flags = format!(
        "--server-delay 0s --duration 2s --warmup 1s --rate 200 --html {} --csv {}",
        html.display(),
        csv.display()
    );
    let (code, r) = load(&flags, dir.path());
    assert_eq!(code, 0, "{r:#}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("time_s,ops,errors,p50_us,p99_us,max_us,phase"));
    let cells: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(cells.len() >= 3 && cells.iter().all(|r| r.len() == 7), "{text}");
    // The warmup second: its ops, no latency (empty cells, never zeros).
    assert_eq!(cells[0][6], "warmup", "{text}");
    assert_eq!(&cells[0][3..6], ["", "", ""], "{text}");
    assert!(cells[1..3].iter().all(|r| r[6] == "measured"), "{text}");
    assert!(cells[3..].iter().all(|r| r[6] == "drain"), "{text}");
    let number = |c: &str| -> f64 { c.parse().expect("a number") };
    let ops: f64 = cells.iter().map(|r| number(r[1])).sum();
    assert_eq!(ops as u64, u(&r, "/operations/total"));
    let measured: Vec<Vec<f64>> = cells[1..3]
        .iter()
        .map(|r| r[..6].iter().map(|c| number(c)).collect())
        .collect();
    assert!(measured.iter().all(|r| r[3] <= r[4] && r[4] <= r[5]), "{text}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"));
    assert_eq!(page.matches("<svg").count(), page.matches("</svg>").count());
    assert!(page.matches("<svg class=\"chart\"").count() >= 4);
    let series = page.matches("data-points=\"").count();
    assert!(series >= 7, "latency x3, throughput x2, spectrum x2: {series}");
    assert!(!page.contains("<script") && !page.contains("src=") && !page.contains("href="));
    assert!(page.contains("id=\"verdict\"") && page.contains("PASSED"));
    // The warmup second is shaded in both timeline charts.
    assert_eq!(
        page.matches("<rect class=\"phase\" data-phase=\"warmup\"")
            .count(),
        2
    );
}

#[test]
fn the_human_report_shows_histogram_breakdown_rate_and_stages() {
    let out = run(&[
        "--server-delay",
        "0s",
        "--stages",
        "1s@100",
        "--read-ratio",
        "0.5",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for wanted in [
        "min ",
        "stddev ",
        "s [",
        "■",
        "per RPC      ",
        "withdraw (stream)",
        "read (GetBalance)",
        "rate            requested 100.0 ops/s, achieved",
        "stages ",
        "latency (uncorrected, from actual send)",
    ] {
        assert!(text.contains(wanted), "{wanted:?} missing from:\n{text}");
    }
}
