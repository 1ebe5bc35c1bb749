//! The report for people, on stdout: throughput, outcome and status counts,
//! latency percentiles (corrected and uncorrected under `--rate`) with a
//! histogram, the per-RPC breakdown, grouped errors, rate and stages, and the
//! consistency verdict with the first violations spelled out.

use std::fmt::Write as _;

use bank_checker::Verdict;

use super::units::{self, us};
use super::{ascii, breakdown, schedule, Consistency, Latency, Summary};

/// Violations printed in full; the rest are counted.
const VIOLATIONS_SHOWN: usize = 10;

/// Renders the summary; `open_loop` adds the uncorrected latency line.
pub fn render(s: &Summary, open_loop: bool) -> String {
    let mut out = String::new();
    counts(&mut out, s);
    let label = if open_loop {
        "latency (corrected, from intended send)"
    } else {
        "latency"
    };
    latency_line(&mut out, label, &s.latency_us);
    if open_loop {
        latency_line(
            &mut out,
            "latency (uncorrected, from actual send)",
            &s.latency_us_uncorrected,
        );
    }
    if s.latency_failed_us.count > 0 {
        latency_line(
            &mut out,
            "latency of failed calls (no answer from the server)",
            &s.latency_failed_us,
        );
    }
    schedule::render(&mut out, s.schedule.as_ref(), &s.warnings);
    out.push_str(&ascii::render(&s.histogram));
    breakdown::per_rpc(&mut out, s);
    breakdown::errors(&mut out, s);
    breakdown::rate_and_stages(&mut out, s);
    thresholds(&mut out, s);
    verdict(&mut out, &s.consistency);
    out
}

/// Throughput, outcomes, status codes and the extra calls.
fn counts(out: &mut String, s: &Summary) {
    let o = &s.operations;
    let _ = writeln!(out, "== stress-client report ==");
    let _ = writeln!(
        out,
        "throughput      {:.1} ops/s over {:.2} s measured",
        s.throughput_ops_per_s, s.measured_s
    );
    let _ = writeln!(
        out,
        "operations      {} total: {} approved, {} insufficient funds, {} not applied, {} errors",
        o.total, o.approved, o.insufficient_funds, o.not_applied, o.errors
    );
    let _ = writeln!(
        out,
        "unknown outcome {} (resolved by GetOperation: {}, of which {} had taken effect; unresolved: {})",
        o.indeterminate, o.resolved, o.resolved_applied, o.unresolved
    );
    let codes: Vec<String> = s.status_codes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(out, "status codes    {}", codes.join(" "));
    let x = &s.extras;
    let _ = writeln!(
        out,
        "reads           {} under load ({} failed)",
        x.reads, x.read_errors
    );
    let _ = writeln!(
        out,
        "retries         {} sent twice under one request id ({} answered ABORTED while the original waited, {} failed)",
        x.duplicates, x.duplicates_aborted, x.duplicate_errors
    );
    let _ = writeln!(
        out,
        "invalid calls   {} sent on purpose ({} refused as the contract says, {} answered wrongly, {} not answered)",
        x.invalid_sent, x.invalid_refused_as_expected, x.invalid_wrong, x.invalid_unanswered
    );
    let _ = writeln!(
        out,
        "connections     {} opened, {} GOAWAYs received",
        s.connections.opened, s.connections.goaways
    );
}

fn latency_line(out: &mut String, label: &str, l: &Latency) {
    let _ = writeln!(out, "{label} over {} samples:", l.count);
    let _ = writeln!(
        out,
        "  p50 {}  p90 {}  p99 {}  p99.9 {}  p99.99 {}  max {}",
        us(l.p50),
        us(l.p90),
        us(l.p99),
        us(l.p999),
        us(l.p9999),
        us(l.max)
    );
    let _ = writeln!(out, "  {}", breakdown::spread(l));
}

/// Each `--threshold`, passed or crossed, with the measured value.
fn thresholds(out: &mut String, s: &Summary) {
    if s.thresholds.is_empty() {
        return;
    }
    let crossed = s.thresholds.iter().filter(|t| !t.passed).count();
    let _ = writeln!(
        out,
        "thresholds      {} of {} crossed",
        crossed,
        s.thresholds.len()
    );
    for t in &s.thresholds {
        let mark = if t.passed { "ok     " } else { "CROSSED" };
        let _ = writeln!(
            out,
            "  {mark} {:<24} measured {}",
            t.expression,
            units::with_unit(t.value, t.unit)
        );
    }
}

/// The verdict section (also printed by `check`).
pub fn verdict(out: &mut String, c: &Consistency) {
    let k = &c.checked;
    let checked = format!(
        "checked {} ops ({} transfers), {} reads, {} retries; of the ops of unknown outcome {} took effect and {} did not",
        k.ops, k.transfers, k.reads, k.duplicates, k.unknown_applied, k.unknown_not_applied
    );
    match c.verdict {
        Verdict::Passed => {
            let _ = writeln!(out, "consistency     PASSED: {checked}; one order of all ops explains every answer, read and balance");
        }
        Verdict::Inconclusive => {
            let _ = writeln!(out, "consistency     INCONCLUSIVE: no violation found, but not everything could be decided; {checked}");
            for reason in &c.undecided {
                let _ = writeln!(out, "  - {reason}");
            }
        }
        Verdict::Failed => {
            let _ = writeln!(
                out,
                "consistency     FAILED: {} violation(s); {checked}",
                c.total_violations
            );
            violations(out, c);
        }
    }
}

fn violations(out: &mut String, c: &Consistency) {
    for v in c.violations.iter().take(VIOLATIONS_SHOWN) {
        let _ = writeln!(
            out,
            "  - [{}] account {}: {}",
            v.kind.as_str(),
            v.account_id,
            v.detail
        );
    }
    let hidden = c
        .total_violations
        .saturating_sub(VIOLATIONS_SHOWN.min(c.violations.len()) as u64);
    if hidden > 0 {
        let _ = writeln!(out, "  ... and {hidden} more");
    }
}
