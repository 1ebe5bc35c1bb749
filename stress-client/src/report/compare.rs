//! `stress-client compare A.json B.json`: two `--json` reports side by side,
//! B against A with ratios, and an optional regression gate
//! (`--fail-if-slower PCT`: B's throughput lower, or its p99 higher, than
//! A's by more than PCT percent). The files are external input: anything
//! missing or malformed is a clear error, never a panic.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::rpc::Rpc;

/// The largest report file compare reads.
pub const REPORT_BYTES_MAX: u64 = 64 << 20;

/// The latency rows: label and key under `latency_us`.
const LATENCY_ROWS: [(&str, &str); 6] = [
    ("p50 us", "p50"),
    ("p90 us", "p90"),
    ("p99 us", "p99"),
    ("p99.9 us", "p999"),
    ("p99.99 us", "p9999"),
    ("max us", "max"),
];

/// The numbers compare reads from one report.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub throughput: f64,
    /// In the order of [`LATENCY_ROWS`].
    pub latency: [f64; 6],
    pub errors: f64,
    pub verdict: String,
    /// p99 per kind of call, for the kinds the report has calls of (older
    /// reports have no `per_rpc`: none).
    pub per_rpc_p99: Vec<(&'static str, f64)>,
}

/// What a comparison found.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub table: String,
    /// Why B counts as slower than the gate allows (empty: it does not).
    pub regressions: Vec<String>,
}

/// Reads a report file.
pub fn load(path: &Path) -> Result<Run, String> {
    let name = path.display();
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {name}: {e}"))?
        .len();
    if size > REPORT_BYTES_MAX {
        return Err(format!(
            "{name} is {size} bytes, more than a report ({REPORT_BYTES_MAX})"
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {name}: {e}"))?;
    let json: Value = serde_json::from_str(&text).map_err(|e| format!("{name} is not JSON: {e}"))?;
    parse(&json).map_err(|e| format!("{name} is not a stress-client --json report: {e}"))
}

/// The numbers of one parsed report.
pub fn parse(json: &Value) -> Result<Run, String> {
    let number = |pointer: &str| {
        json.pointer(pointer)
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("no number at {pointer}"))
    };
    let mut latency = [0.0; 6];
    for (slot, (_, key)) in latency.iter_mut().zip(LATENCY_ROWS) {
        *slot = number(&format!("/latency_us/{key}"))?;
    }
    let verdict = json
        .pointer("/consistency/verdict")
        .and_then(Value::as_str)
        .ok_or("no text at /consistency/verdict")?;
    Ok(Run {
        throughput: number("/throughput_ops_per_s")?,
        latency,
        errors: number("/operations/errors")?,
        verdict: verdict.to_owned(),
        per_rpc_p99: per_rpc_p99(json),
    })
}

/// `per_rpc.<key>.latency_us.p99` of each kind with calls.
fn per_rpc_p99(json: &Value) -> Vec<(&'static str, f64)> {
    Rpc::ALL
        .iter()
        .filter_map(|rpc| {
            let entry = json.pointer(&format!("/per_rpc/{}", rpc.key()))?;
            entry.get("count").and_then(Value::as_u64).filter(|n| *n > 0)?;
            let p99 = entry.pointer("/latency_us/p99").and_then(Value::as_f64)?;
            Some((rpc.key(), p99))
        })
        .collect()
}

/// Compares B with A; `fail_if_slower` (percent) turns on the gate.
pub fn compare(a: &Run, b: &Run, fail_if_slower: Option<f64>) -> Comparison {
    let mut table = format!("{:<20} {:>14} {:>14} {:>9}\n", "", "A", "B", "B/A");
    row(&mut table, "throughput/s", a.throughput, b.throughput);
    for ((label, _), (x, y)) in LATENCY_ROWS.iter().zip(a.latency.iter().zip(&b.latency)) {
        row(&mut table, label, *x, *y);
    }
    for (key, x) in &a.per_rpc_p99 {
        if let Some((_, y)) = b.per_rpc_p99.iter().find(|(k, _)| k == key) {
            row(&mut table, &format!("p99 {key}"), *x, *y);
        }
    }
    row(&mut table, "errors", a.errors, b.errors);
    let _ = writeln!(table, "{:<20} {:>14} {:>14}", "verdict", a.verdict, b.verdict);
    let regressions = fail_if_slower.map_or_else(Vec::new, |pct| regressions(a, b, pct));
    Comparison { table, regressions }
}

fn row(out: &mut String, label: &str, a: f64, b: f64) {
    let ratio = if a > 0.0 {
        format!("{:.3}", b / a)
    } else {
        "-".to_owned()
    };
    let _ = writeln!(out, "{label:<20} {a:>14.1} {b:>14.1} {ratio:>9}");
}

/// B's throughput or p99 worse than A's by more than `pct` percent.
fn regressions(a: &Run, b: &Run, pct: f64) -> Vec<String> {
    let mut found = Vec::new();
    let share = pct / 100.0;
    if b.throughput < a.throughput * (1.0 - share) {
        found.push(format!(
            "throughput fell from {:.1} to {:.1} ops/s, more than {pct}%",
            a.throughput, b.throughput
        ));
    }
    let (p99_a, p99_b) = (a.latency[2], b.latency[2]);
    if p99_b > p99_a * (1.0 + share) {
        found.push(format!("p99 rose from {p99_a} to {p99_b} us, more than {pct}%"));
    }
    found
}

/// Checks `--fail-if-slower`: a finite percentage, 0 or more.
pub fn check_gate(pct: Option<f64>) -> Result<(), String> {
    match pct {
        Some(p) if !(p.is_finite() && p >= 0.0) => Err(format!(
            "--fail-if-slower must be a percentage, 0 or more, got {p}"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(throughput: f64, p99: u64, verdict: &str) -> Value {
        serde_json::json!({
            "throughput_ops_per_s": throughput,
            "latency_us": {"p50": 100, "p90": 200, "p99": p99, "p999": 900, "p9999": 990, "max": 1000},
            "operations": {"errors": 3},
            "consistency": {"verdict": verdict, "passed": verdict == "passed"},
            "per_rpc": {"deposit": {"count": 5, "latency_us": {"p99": p99 * 2}},
                        "transfer": {"count": 0, "latency_us": {"p99": 0}}},
        })
    }

    #[test]
    fn ratios_and_the_gate() {
        let a = parse(&report(1000.0, 500, "passed")).unwrap();
        let b = parse(&report(800.0, 500, "failed")).unwrap();
        let c = compare(&a, &b, None);
        assert!(c.regressions.is_empty());
        assert!(
            c.table.contains("throughput/s") && c.table.contains("0.800"),
            "{}",
            c.table
        );
        assert!(c.table.contains("passed") && c.table.contains("failed"));
        assert!(
            c.table.contains("p99 deposit") && !c.table.contains("p99 transfer"),
            "{}",
            c.table
        );
        assert_eq!(compare(&a, &b, Some(10.0)).regressions.len(), 1);
        assert!(compare(&a, &b, Some(25.0)).regressions.is_empty());
        let slow = parse(&report(1000.0, 700, "passed")).unwrap();
        let r = compare(&a, &slow, Some(20.0)).regressions;
        assert!(r.len() == 1 && r[0].contains("p99"), "{r:?}");
    }

    #[test]
    fn missing_keys_are_errors_naming_the_key() {
        let mut bad = report(1.0, 1, "passed");
        bad["latency_us"].as_object_mut().unwrap().remove("p999");
        assert!(parse(&bad).unwrap_err().contains("/latency_us/p999"));
        assert!(parse(&serde_json::json!([1, 2])).is_err());
        assert!(check_gate(Some(-1.0)).is_err() && check_gate(Some(f64::NAN)).is_err());
        assert!(check_gate(Some(5.0)).is_ok() && check_gate(None).is_ok());
    }
}
