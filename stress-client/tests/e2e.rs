//! End-to-end runs of the real `stress-client` binary on 127.0.0.1:0: a
//! correct server passes (exit 0), `--unsafe-no-lock` is caught (exit 1),
//! timeouts shorter than the delay are all resolved, failures exit 2, and
//! calls that break the contract on purpose are refused and counted apart.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Runs the binary with `args` plus `--quiet --json`; returns exit code and report.
fn stress(args: &[&str]) -> (i32, Option<Value>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("report.json");
    let status = Command::new(env!("CARGO_BIN_EXE_stress-client"))
        .args(args)
        .args(["--quiet", "--json"])
        .arg(&json)
        .status()
        .expect("stress-client runs");
    (status.code().expect("exited, not killed"), read_json(&json))
}

/// `stress` with the flags written as one line (no flag takes a value with spaces).
fn stress_line(flags: &str) -> (i32, Option<Value>) {
    stress(&flags.split_whitespace().collect::<Vec<_>>())
}

fn read_json(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).expect("the report is valid JSON"))
}

fn ops(report: &Value, key: &str) -> u64 {
    report["operations"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("operations.{key} in {report}"))
}

#[test]
fn a_correct_server_passes_with_approvals_denials_and_transfers() {
    let (code, report) = stress_line("--server-delay 0s --connections 2 --streams 8 --requests 600 --warmup 0s --accounts 3 --initial-balance 500 --mode stream");
    let report = report.expect("a report");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["consistency"]["passed"], Value::Bool(true));
    assert_eq!(ops(&report, "total"), 600);
    assert!(
        ops(&report, "approved") > 0 && ops(&report, "insufficient_funds") > 0,
        "{report:#}"
    );
    assert_eq!(ops(&report, "errors"), 0);
    for key in ["p50", "p90", "p99", "p999", "p9999", "max"] {
        assert!(report["latency_us"][key].as_u64().is_some(), "latency_us.{key}");
    }
    assert!(report["throughput_ops_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn an_unlocked_server_is_reported_as_violated_with_exit_code_1() {
    // Sixteen withdrawals at a time on one account, each reading the balance
    // and sleeping 20 ms before writing back: updates are lost every time.
    let (code, report) = stress_line("--server-unsafe-no-lock --server-delay 20ms --streams 16 --requests 64 --warmup 0s --deposit-ratio 0 --transfer-ratio 0 --initial-balance 100000 --mode unary");
    let report = report.expect("a report");
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["consistency"]["passed"], Value::Bool(false));
    let kinds: Vec<&str> = report["consistency"]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"lost_update"), "{kinds:?}");
}

#[test]
fn the_seed_scenario_approves_one_of_two_with_the_lock() {
    let (code, report) = stress_line("--server-delay 200ms --initial-balance 100 --amount 70,80 --deposit-ratio 0 --transfer-ratio 0 --streams 2 --requests 2 --warmup 0s --mode unary");
    let report = report.expect("a report");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        (ops(&report, "approved"), ops(&report, "insufficient_funds")),
        (1, 1)
    );
}

#[test]
fn timeouts_shorter_than_the_delay_are_resolved_and_still_pass() {
    // Each op holds the lock for 40 ms but its caller waits only 15 ms: almost
    // every call fails, some after taking effect. GetOperation settles them all.
    for mode in ["unary", "stream"] {
        let (code, report) = stress(&[
            "--server-delay",
            "40ms",
            "--timeout",
            "15ms",
            "--streams",
            "6",
            "--requests",
            "30",
            "--warmup",
            "0s",
            "--accounts",
            "2",
            "--mode",
            mode,
        ]);
        let report = report.expect("a report");
        assert_eq!(code, 0, "{mode}: {report:#}");
        assert!(ops(&report, "indeterminate") > 0, "{mode}: {report:#}");
        assert_eq!(
            ops(&report, "resolved"),
            ops(&report, "indeterminate"),
            "{mode}: {report:#}"
        );
        assert_eq!(ops(&report, "unresolved"), 0);
    }
}

#[test]
fn an_unreachable_target_exits_2_and_bad_flags_too() {
    let (code, report) = stress_line("--target http://127.0.0.1:1 --requests 1");
    assert_eq!(code, 2);
    assert!(report.is_none());
    let (code, _) = stress_line("--deposit-ratio 2");
    assert_eq!(code, 2);
}

#[test]
fn hgrm_and_interval_logs_are_written_and_merge() {
    let dir = tempfile::tempdir().unwrap();
    let hgrm = dir.path().join("run.hgrm");
    let log = dir.path().join("run.hlog");
    let (code, _) = stress(&[
        "--server-delay",
        "0s",
        "--requests",
        "300",
        "--warmup",
        "0s",
        "--streams",
        "4",
        "--hgrm",
        hgrm.to_str().unwrap(),
        "--histogram-log",
        log.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(&hgrm).unwrap();
    assert!(
        text.contains("Percentile") && text.contains("Total count    =          300]"),
        "{text}"
    );
    let merged = Command::new(env!("CARGO_BIN_EXE_stress-client"))
        .arg("merge")
        .arg(&log)
        .arg(&log)
        .output()
        .unwrap();
    assert!(merged.status.success());
    let out = String::from_utf8_lossy(&merged.stdout);
    assert!(out.contains("600 samples"), "{out}");
}

/// The kinds of the violations a report lists.
fn kinds(report: &Value) -> Vec<String> {
    report["consistency"]["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .filter_map(|v| v["kind"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn the_verdict_says_what_it_checked_reads_and_retries_included() {
    let (code, report) = stress_line("--server-delay 0s --streams 8 --requests 2000 --warmup 0s --accounts 4 --read-ratio 0.2 --duplicate-ratio 0.1");
    let report = report.expect("a report");
    assert_eq!(code, 0, "{report:#}");
    let c = &report["consistency"];
    assert_eq!(c["verdict"], "passed");
    let checked = |k: &str| c["checked"][k].as_u64().unwrap_or_else(|| panic!("checked.{k}"));
    assert_eq!(checked("ops"), 2000, "reads and retries are extra calls");
    assert!(checked("reads") > 200 && checked("duplicates") > 100, "{c:#}");
    assert!(checked("transfers") > 0);
    assert_eq!(ops(&report, "total"), 2000);
    assert!(report["extras"]["reads"].as_u64().unwrap() >= checked("reads"));
}

/// A planted bug of the embedded server must be named with its kind; the
/// same workload against the correct server passes.
fn zoo_case(bug: &str, workload: &str, kind: &str) {
    let (code, report) = stress_line(&format!("--server-inject-bug {bug} {workload}"));
    let report = report.expect("a report");
    assert_eq!(code, 1, "{bug}: {report:#}");
    assert_eq!(report["consistency"]["verdict"], "failed");
    assert!(
        kinds(&report).iter().any(|k| k == kind),
        "{bug}: {:?}",
        kinds(&report)
    );
    let (code, report) = stress_line(workload);
    assert_eq!(code, 0, "correct server under the {bug} workload: {report:#?}");
}

#[test]
fn opposite_transfers_in_two_critical_sections_are_an_order_cycle() {
    zoo_case(
        "non-atomic-transfer",
        "--server-delay 1ms --accounts 2 --transfer-ratio 0.8 --deposit-ratio 0.1 --streams 8 --duration 1s --warmup 0s",
        "order_cycle",
    );
}

#[test]
fn a_lagging_read_cache_is_a_stale_read() {
    zoo_case(
        "stale-read",
        "--server-delay 1ms --accounts 2 --read-ratio 0.3 --streams 8 --duration 1s --warmup 0s",
        "stale_read",
    );
}

#[test]
fn a_retry_applied_again_is_a_double_apply() {
    zoo_case(
        "double-apply-retry",
        "--server-delay 1ms --accounts 2 --duplicate-ratio 0.3 --streams 8 --duration 1s --warmup 0s",
        "double_apply",
    );
}

#[test]
fn invalid_calls_are_refused_by_the_real_server_and_counted_only_as_extras() {
    let (code, report) = stress_line(
        "--server-delay 0s --streams 8 --requests 2000 --warmup 0s --accounts 4 --invalid-ratio 0.05 --duplicate-ratio 0.05",
    );
    let report = report.expect("a report");
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["consistency"]["verdict"], "passed");
    let x = &report["extras"];
    let count = |k: &str| x[k].as_u64().unwrap_or_else(|| panic!("extras.{k} in {x}"));
    // 5 % of 2000 money ops, give or take the draw.
    assert!((50..=170).contains(&count("invalid_sent")), "{x:#}");
    assert_eq!(
        count("invalid_refused_as_expected"),
        count("invalid_sent"),
        "{x:#}"
    );
    assert_eq!(
        (count("invalid_wrong"), count("invalid_unanswered")),
        (0, 0),
        "{x:#}"
    );
    assert_eq!(ops(&report, "total"), 2000, "invalid calls are not money ops");
    assert_eq!(ops(&report, "errors"), 0, "invalid calls are never errors");
    assert_eq!(report["consistency"]["checked"]["ops"], 2000);
}

/// Runs the binary with `flags` (stderr piped, so not a terminal); its exit
/// code and stderr.
fn stress_stderr(flags: &str) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_stress-client"))
        .args(flags.split_whitespace())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .output()
        .expect("stress-client runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().expect("exited, not killed"), stderr)
}

/// Off a terminal the live progress is a plain line every 5 s (ops/s, the
/// last second's p99, errors), never `\r`; `--quiet` turns it off.
#[test]
fn live_progress_off_a_terminal_is_plain_lines_and_quiet_silences_it() {
    let flags = "--server-delay 0s --rate 50 --duration 6s --warmup 0s --streams 2 --accounts 2";
    let quiet = std::thread::spawn(move || stress_stderr(&format!("{flags} --quiet")));
    let (code, stderr) = stress_stderr(flags);
    assert_eq!(code, 0, "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("stress-client: progress "))
        .unwrap_or_else(|| panic!("no progress line in: {stderr}"));
    for part in ["s: ", " ops/s ", " p99 ", "(last second)", " errors"] {
        assert!(line.contains(part), "{part:?} missing from {line:?}");
    }
    assert!(!stderr.contains('\r') && !stderr.contains('\u{1b}'), "{stderr:?}");
    let (code, stderr) = quiet.join().expect("the quiet run");
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("progress"), "{stderr}");
}
