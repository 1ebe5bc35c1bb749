//! The CI gates on the real binary: `--threshold` (exit 4, `thresholds[]`
//! in the JSON, listed in the text report, a bad expression exit 2), the
//! JSON's `started_at`, `tool_version` and `command_line`, human units in
//! the text report, and `compare`'s verdict and error-rate gates.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stress-client"))
        .args(args)
        .output()
        .expect("stress-client runs")
}

/// A short load on the embedded server writing `--json` to `dir`.
fn load(extra: &[&str], dir: &Path) -> (Output, Value) {
    let json = dir.join("r.json");
    let mut args = vec!["--server-delay", "0s", "--streams", "4", "--requests", "200"];
    args.extend(["--json", json.to_str().unwrap()]);
    args.extend(extra);
    let out = run(&args);
    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("no report ({e}): {out:?}"));
    (out, serde_json::from_str(&text).expect("JSON"))
}

#[test]
fn a_crossed_threshold_exits_4_and_the_report_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("r.html");
    let gates = [
        "--threshold",
        "p99 < 1us",
        "--threshold",
        "error_rate < 1%",
        "--html",
        html.to_str().unwrap(),
    ];
    let (out, r) = load(&gates, dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    let t = r["thresholds"].as_array().expect("thresholds[]");
    assert_eq!(t.len(), 2, "{r:#}");
    assert_eq!(t[0]["expression"], "p99 < 1us");
    assert_eq!(t[0]["passed"], false);
    assert_eq!(t[0]["value"].as_f64(), r["latency_us"]["p99"].as_f64());
    assert_eq!(t[1]["expression"], "error_rate < 1%");
    assert_eq!(t[1]["passed"], true);
    assert_eq!(t[1]["value"].as_f64(), Some(0.0));
    assert!(stdout.contains("CROSSED p99 < 1us"), "{stdout}");
    assert!(stdout.contains("thresholds      1 of 2 crossed"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("threshold crossed: p99 < 1us (measured "),
        "{stderr}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("id=\"thresholds\"") && page.contains("<td>p99 &lt; 1us</td>"));
    assert!(page.contains("CROSSED") && page.contains(r["started_at"].as_str().unwrap()));
}

#[test]
fn thresholds_that_hold_exit_0_and_the_report_is_stamped() {
    let dir = tempfile::tempdir().unwrap();
    let (out, r) = load(
        &["--threshold", "p99 < 60s", "--threshold", "throughput > 0"],
        dir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(r["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["passed"] == true));
    assert_eq!(r["tool_version"], env!("CARGO_PKG_VERSION"));
    let started = r["started_at"].as_str().expect("started_at");
    assert!(
        started.len() >= 20 && started.ends_with('Z') && started.as_bytes()[10] == b'T',
        "{started}"
    );
    let argv: Vec<&str> = r["command_line"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(argv[0].ends_with("stress-client"), "{argv:?}");
    assert!(
        argv.windows(2).any(|w| w == ["--threshold", "p99 < 60s"]),
        "{argv:?}"
    );
    // Text for people: durations carry their unit.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("p50 "))
        .expect("percentiles");
    assert!(line.contains("µs") || line.contains("ms"), "{line}");
    assert!(!stdout.contains(" in us "), "{stdout}");
}

#[test]
fn a_bad_threshold_is_a_usage_error_naming_it() {
    for bad in ["p95 < 5ms", "p99 < 5", "error_rate < 1", "throughput < 5"] {
        let out = run(&["--threshold", bad, "--requests", "1"]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(bad) && stderr.contains("--threshold"),
            "{bad}: {stderr}"
        );
    }
}

fn report_file(dir: &Path, name: &str, verdict: &str, errors: u64) -> String {
    let report = serde_json::json!({
        "throughput_ops_per_s": 1000.0,
        "latency_us": {"p50": 100, "p90": 200, "p99": 500, "p999": 900, "p9999": 990, "max": 1000},
        "operations": {"errors": errors, "total": 1000},
        "consistency": {"verdict": verdict},
    });
    let path = dir.join(name);
    std::fs::write(&path, report.to_string()).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn compare_fails_on_a_worse_verdict_unless_told_to_ignore_it() {
    let dir = tempfile::tempdir().unwrap();
    let ok = report_file(dir.path(), "ok.json", "passed", 0);
    let broken = report_file(dir.path(), "broken.json", "failed", 0);
    let out = run(&["compare", &ok, &broken, "--fail-if-slower", "10"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("WORSE VERDICT: passed in A, failed in B"),
        "{stdout}"
    );
    assert_eq!(
        run(&["compare", &ok, &broken, "--ignore-verdict"]).status.code(),
        Some(0)
    );
    assert_eq!(
        run(&["compare", &broken, &ok]).status.code(),
        Some(0),
        "better is fine"
    );
}

#[test]
fn compare_fails_when_errors_go_up_by_more_than_the_points_given() {
    let dir = tempfile::tempdir().unwrap();
    let a = report_file(dir.path(), "a.json", "passed", 10);
    let b = report_file(dir.path(), "b.json", "passed", 40);
    let out = run(&["compare", &a, &b, "--fail-if-errors-up", "2"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("MORE ERRORS: error rate rose from 1.000% to 4.000%"),
        "{stdout}"
    );
    assert_eq!(
        run(&["compare", &a, &b, "--fail-if-errors-up", "3"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run(&["compare", &a, &b, "--fail-if-errors-up", "-1"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn a_config_file_drives_a_run_and_the_command_line_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("run.toml");
    let toml = "server-delay = \"0s\"\nstreams = 4\nrequests = 100\nquiet = true\n\
                threshold = [\"p99 < 1us\"]\n";
    std::fs::write(&config, toml).unwrap();
    let config = config.to_str().unwrap();
    let crossed = run(&["--config", config]);
    assert_eq!(crossed.status.code(), Some(4), "{crossed:?}");
    assert!(crossed.stdout.is_empty(), "quiet = true came from the file");
    let overridden = run(&["--config", config, "--threshold", "p99 < 60s"]);
    assert_eq!(overridden.status.code(), Some(0), "{overridden:?}");
    std::fs::write(dir.path().join("bad.toml"), "streams = 4\nstreemz = 1\n").unwrap();
    let bad = run(&["--config", dir.path().join("bad.toml").to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown key \"streemz\""));
}
