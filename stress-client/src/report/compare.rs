//! `stress-client compare A.json B.json`: two `--json` reports side by side,
//! B against A with ratios, and the gates of a CI regression check: B's
//! verdict worse than A's (passed → inconclusive → failed; off with
//! `--ignore-verdict`), `--fail-if-slower PCT` (B's throughput lower, or its
//! p99 higher, than A's by more than PCT percent) and `--fail-if-errors-up
//! PCT` (B's error rate above A's by more than PCT percentage points). The
//! files are external input: anything missing or malformed is a clear error,
//! never a panic.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::units;
use crate::rpc::Rpc;

/// The largest report file compare reads.
pub const REPORT_BYTES_MAX: u64 = 64 << 20;

/// The latency rows: label and key under `latency_us`.
const LATENCY_ROWS: [(&str, &str); 6] = [
    ("p50", "p50"),
    ("p90", "p90"),
    ("p99", "p99"),
    ("p99.9", "p999"),
    ("p99.99", "p9999"),
    ("max", "max"),
];

/// The numbers compare reads from one report.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub throughput: f64,
    /// In the order of [`LATENCY_ROWS`].
    pub latency: [f64; 6],
    pub errors: f64,
    /// `operations.total`; `None` in hand-made reports without it.
    pub total: Option<f64>,
    /// "passed", "inconclusive" or "failed".
    pub verdict: String,
    /// p99 per kind of call, for the kinds the report has calls of (older
    /// reports have no `per_rpc`: none).
    pub per_rpc_p99: Vec<(&'static str, f64)>,
}

/// What a comparison found.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub table: String,
    /// Why B fails a gate, one line each (empty: it passes them all).
    pub regressions: Vec<String>,
}

/// The gates a comparison checks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gates {
    /// Percent: B's throughput lower or p99 higher than that is a regression.
    pub fail_if_slower: Option<f64>,
    /// Percentage points: B's error rate above A's by more is a regression.
    pub fail_if_errors_up: Option<f64>,
    /// Do not fail on a worse verdict (the behaviour before the gate).
    pub ignore_verdict: bool,
}

/// The verdicts from best to worst.
const VERDICTS: [&str; 3] = ["passed", "inconclusive", "failed"];

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
    if !VERDICTS.contains(&verdict) {
        return Err(format!(
            "/consistency/verdict is {verdict:?}, not one of {VERDICTS:?}"
        ));
    }
    Ok(Run {
        throughput: number("/throughput_ops_per_s")?,
        latency,
        errors: number("/operations/errors")?,
        total: number("/operations/total").ok(),
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

impl Run {
    /// Calls ended in an error status, in percent of all ops.
    fn error_rate_pct(&self) -> Option<f64> {
        let total = self.total?;
        Some(if total > 0.0 {
            100.0 * self.errors / total
        } else {
            0.0
        })
    }

    fn verdict_rank(&self) -> usize {
        VERDICTS
            .iter()
            .position(|v| *v == self.verdict)
            .unwrap_or(VERDICTS.len())
    }
}

/// Compares B with A and checks the gates.
pub fn compare(a: &Run, b: &Run, gates: Gates) -> Comparison {
    let mut table = format!("{:<20} {:>14} {:>14} {:>9}\n", "", "A", "B", "B/A");
    row(&mut table, "throughput/s", a.throughput, b.throughput);
    for ((label, _), (x, y)) in LATENCY_ROWS.iter().zip(a.latency.iter().zip(&b.latency)) {
        latency_row(&mut table, label, *x, *y);
    }
    for (key, x) in &a.per_rpc_p99 {
        if let Some((_, y)) = b.per_rpc_p99.iter().find(|(k, _)| k == key) {
            latency_row(&mut table, &format!("p99 {key}"), *x, *y);
        }
    }
    row(&mut table, "errors", a.errors, b.errors);
    if let (Some(x), Some(y)) = (a.error_rate_pct(), b.error_rate_pct()) {
        let _ = writeln!(table, "{:<20} {:>13.3}% {:>13.3}%", "error rate", x, y);
    }
    let _ = writeln!(table, "{:<20} {:>14} {:>14}", "verdict", a.verdict, b.verdict);
    let mut found = Vec::new();
    if !gates.ignore_verdict && b.verdict_rank() > a.verdict_rank() {
        found.push(format!(
            "WORSE VERDICT: {} in A, {} in B (B's consistency check is worse; --ignore-verdict skips this gate)",
            a.verdict, b.verdict
        ));
    }
    if let Some(pct) = gates.fail_if_slower {
        found.extend(regressions(a, b, pct).into_iter().map(|r| format!("SLOWER: {r}")));
    }
    if let Some(points) = gates.fail_if_errors_up {
        found.extend(errors_up(a, b, points));
    }
    Comparison {
        table,
        regressions: found,
    }
}

/// B's error rate above A's by more than `points` percentage points.
fn errors_up(a: &Run, b: &Run, points: f64) -> Option<String> {
    let (x, y) = (a.error_rate_pct()?, b.error_rate_pct()?);
    (y - x > points).then(|| {
        format!("MORE ERRORS: error rate rose from {x:.3}% to {y:.3}%, more than {points} percentage points")
    })
}

fn ratio(a: f64, b: f64) -> String {
    if a > 0.0 {
        format!("{:.3}", b / a)
    } else {
        "-".to_owned()
    }
}

fn row(out: &mut String, label: &str, a: f64, b: f64) {
    let _ = writeln!(out, "{label:<20} {a:>14.1} {b:>14.1} {:>9}", ratio(a, b));
}

/// A row of latencies (µs in the reports), in human units.
fn latency_row(out: &mut String, label: &str, a: f64, b: f64) {
    let (x, y) = (units::duration(a), units::duration(b));
    let _ = writeln!(out, "{label:<20} {x:>14} {y:>14} {:>9}", ratio(a, b));
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
        found.push(format!(
            "p99 rose from {} to {}, more than {pct}%",
            units::duration(p99_a),
            units::duration(p99_b)
        ));
    }
    found
}

/// Checks `--fail-if-slower`: a finite percentage, 0 or more.
pub fn check_gate(pct: Option<f64>) -> Result<(), String> {
    check_percent("--fail-if-slower", pct)
}

/// Checks the gates' flags, and that both reports hold what they need.
pub fn check_gates(gates: &Gates, a: &Run, b: &Run) -> Result<(), String> {
    check_gate(gates.fail_if_slower)?;
    check_percent("--fail-if-errors-up", gates.fail_if_errors_up)?;
    let no_total = a.total.is_none() || b.total.is_none();
    if gates.fail_if_errors_up.is_some() && no_total {
        return Err("--fail-if-errors-up needs /operations/total in both reports".into());
    }
    Ok(())
}

fn check_percent(flag: &str, pct: Option<f64>) -> Result<(), String> {
    match pct {
        Some(p) if !(p.is_finite() && p >= 0.0) => {
            Err(format!("{flag} must be a percentage, 0 or more, got {p}"))
        }
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
            "operations": {"errors": 3, "total": 300},
            "consistency": {"verdict": verdict, "passed": verdict == "passed"},
            "per_rpc": {"deposit": {"count": 5, "latency_us": {"p99": p99 * 2}},
                        "transfer": {"count": 0, "latency_us": {"p99": 0}}},
        })
    }

    #[test]
    fn ratios_and_the_gate() {
        let a = parse(&report(1000.0, 500, "passed")).unwrap();
        let b = parse(&report(800.0, 500, "failed")).unwrap();
        let ignore = Gates {
            ignore_verdict: true,
            ..Gates::default()
        };
        let slower = |pct| Gates {
            fail_if_slower: Some(pct),
            ..ignore
        };
        let c = compare(&a, &b, ignore);
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
        assert_eq!(compare(&a, &b, slower(10.0)).regressions.len(), 1);
        assert!(compare(&a, &b, slower(25.0)).regressions.is_empty());
        let slow = parse(&report(1000.0, 700, "passed")).unwrap();
        let r = compare(&a, &slow, slower(20.0)).regressions;
        assert!(r.len() == 1 && r[0].contains("p99"), "{r:?}");
    }

    #[test]
    fn a_worse_verdict_fails_unless_ignored() {
        let run = |verdict| parse(&report(1000.0, 500, verdict)).unwrap();
        let worse = |a, b, ignore_verdict| {
            let gates = Gates {
                ignore_verdict,
                ..Gates::default()
            };
            compare(&run(a), &run(b), gates).regressions
        };
        for (a, b) in [
            ("passed", "failed"),
            ("passed", "inconclusive"),
            ("inconclusive", "failed"),
        ] {
            let r = worse(a, b, false);
            assert!(
                r.len() == 1 && r[0].contains("WORSE VERDICT") && r[0].contains(b),
                "{a} {b}: {r:?}"
            );
            assert!(worse(a, b, true).is_empty());
        }
        for (a, b) in [
            ("passed", "passed"),
            ("failed", "passed"),
            ("failed", "inconclusive"),
        ] {
            assert!(worse(a, b, false).is_empty(), "{a} {b}");
        }
        let mut odd = report(1.0, 1, "passed");
        odd["consistency"]["verdict"] = "fine".into();
        assert!(parse(&odd).unwrap_err().contains("\"fine\""));
    }

    #[test]
    fn errors_up_is_in_percentage_points() {
        let with_errors = |errors: u64| {
            let mut r = report(1000.0, 500, "passed");
            r["operations"] = serde_json::json!({"errors": errors, "total": 1000});
            parse(&r).unwrap()
        };
        let gate = |points| Gates {
            fail_if_errors_up: Some(points),
            ..Gates::default()
        };
        // 1.0% → 3.5%: up 2.5 points.
        let (a, b) = (with_errors(10), with_errors(35));
        let r = compare(&a, &b, gate(2.0)).regressions;
        assert!(r.len() == 1 && r[0].contains("1.000% to 3.500%"), "{r:?}");
        assert!(compare(&a, &b, gate(2.5)).regressions.is_empty());
        assert!(
            compare(&b, &a, gate(0.0)).regressions.is_empty(),
            "fewer errors pass"
        );
        assert!(compare(&a, &b, Gates::default()).regressions.is_empty());
        let mut old = report(1.0, 1, "passed");
        old["operations"] = serde_json::json!({"errors": 0});
        let old = parse(&old).unwrap();
        assert!(check_gates(&gate(1.0), &a, &old)
            .unwrap_err()
            .contains("/operations/total"));
        assert!(check_gates(&gate(-1.0), &a, &b)
            .unwrap_err()
            .contains("--fail-if-errors-up"));
        assert!(check_gates(&gate(1.0), &a, &b).is_ok());
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
