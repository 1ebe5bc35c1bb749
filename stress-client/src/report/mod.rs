//! The run's report: one serialisable summary (the `--json` schema) built from
//! the merged recorders, the settlement and the checker's verdict, printed for
//! people by `human` and written as `.hgrm` by `hgrm`.

pub mod ascii;
pub mod breakdown;
pub mod compare;
pub mod hgrm;
pub mod html;
pub mod human;
pub mod schedule;
pub mod sections;
pub mod svg;
pub mod units;

use std::collections::BTreeMap;
use std::time::Duration;

use bank_checker::{Checked, Report, Verdict, Violation};
use hdrhistogram::Histogram;
use serde::Serialize;
use tonic::Code;

use crate::errors::{ErrorGroup, ErrorTally};
use crate::histogram::new_histogram;
use crate::recorder::{Counts, Recorder, STATUS_CODES};
use crate::rpc::PerRpc;
use crate::settle::Settlement;
use crate::stage_tally::StageTally;
use crate::stages::Plan;
use crate::threshold::{Measured, Outcome};
pub use sections::{RateReport, RpcReport, StageReport};

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
    pub mean: f64,
    pub count: u64,
    pub min: u64,
    pub stddev: f64,
}

/// Operation counts.
#[derive(Debug, Clone, Serialize)]
pub struct Operations {
    pub total: u64,
    pub approved: u64,
    pub insufficient_funds: u64,
    pub not_applied: u64,
    /// Calls that ended in a gRPC error status (their outcome was then settled).
    pub errors: u64,
    /// Ops whose outcome was unknown when their call ended.
    pub indeterminate: u64,
    /// Of those, settled by `GetOperation`.
    pub resolved: u64,
    /// Of the settled ones, how many had taken effect (approved or denied).
    pub resolved_applied: u64,
    /// Of those, never settled: checked with bounds.
    pub unresolved: u64,
}

/// The checker's verdict (`consistency` in JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Consistency {
    /// "passed", "failed" or "inconclusive".
    pub verdict: Verdict,
    /// True only for "passed".
    pub passed: bool,
    pub total_violations: u64,
    /// Each with its `kind`; at most the first 100.
    pub violations: Vec<Violation>,
    /// What could not be decided (why the verdict is inconclusive).
    pub undecided: Vec<String>,
    /// What the verdict rests on, in numbers.
    pub checked: Checked,
}

impl Consistency {
    /// An inconclusive verdict on `h` for `reason`, without running the checker.
    pub fn undecided(h: &bank_checker::History, reason: &str) -> Consistency {
        Consistency {
            verdict: Verdict::Inconclusive,
            passed: false,
            total_violations: 0,
            violations: Vec::new(),
            undecided: vec![reason.to_owned()],
            checked: Checked {
                ops: h.ops.len() as u64,
                reads: h.reads.len() as u64,
                duplicates: h.duplicates.len() as u64,
                ..Checked::default()
            },
        }
    }
}

impl From<Report> for Consistency {
    fn from(r: Report) -> Self {
        Consistency {
            verdict: r.verdict,
            passed: r.passed,
            total_violations: r.total_violations,
            violations: r.violations,
            undecided: r.undecided,
            checked: r.checked,
        }
    }
}

/// The extra calls made under load (not money ops).
#[derive(Debug, Clone, Serialize)]
pub struct Extras {
    pub reads: u64,
    pub read_errors: u64,
    pub duplicates: u64,
    /// Copies answered ABORTED: the original was still waiting for funds.
    pub duplicates_aborted: u64,
    pub duplicate_errors: u64,
    /// Calls that break the contract on purpose (`--invalid-ratio`).
    pub invalid_sent: u64,
    /// Of those, refused with the contract's status.
    pub invalid_refused_as_expected: u64,
    /// Answered otherwise: each is a `protocol` violation in the verdict.
    pub invalid_wrong: u64,
    /// Not answered (unavailable, shed, cut at the deadline): nothing to judge.
    pub invalid_unanswered: u64,
}

/// The whole report: what `--json` writes.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// When the load started (after setup), RFC 3339 in UTC.
    pub started_at: String,
    /// The stress-client version (`CARGO_PKG_VERSION`).
    pub tool_version: &'static str,
    /// The program's arguments as given, program name first, one string
    /// each, token and metadata values as `***` (values from `--config` are
    /// not spelled out here).
    pub command_line: Vec<String>,
    pub throughput_ops_per_s: f64,
    /// The measured window (after warmup), in seconds.
    pub measured_s: f64,
    /// Latency from the intended send time (equals the uncorrected one in closed loop).
    pub latency_us: Latency,
    /// Latency from the actual send time.
    pub latency_us_uncorrected: Latency,
    /// Latency of the measured calls the server did not answer (transport
    /// errors, client-side timeouts, cut streams): kept out of `latency_us`.
    pub latency_failed_us: Latency,
    /// Under `--rate` or `--stages`: how late the scheduled sends left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<schedule::ScheduleReport>,
    /// What to know before trusting the numbers (the generator fell behind).
    pub warnings: Vec<String>,
    pub operations: Operations,
    pub status_codes: BTreeMap<String, u64>,
    pub extras: Extras,
    pub consistency: Consistency,
    pub config: serde_json::Value,
    /// Calls and latency per kind of call (`withdraw_stream`, `withdraw`, ...).
    pub per_rpc: BTreeMap<String, RpcReport>,
    /// Failed money-op calls by status code and message, most frequent first.
    pub errors: Vec<ErrorGroup>,
    /// Under `--rate` or `--stages`: the rate asked for and the one achieved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateReport>,
    /// Under `--stages`: each stage on its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<StageReport>>,
    /// Each `--threshold` with its measured value (empty without any).
    pub thresholds: Vec<Outcome>,
    /// Connections opened and GOAWAYs received over the run.
    pub connections: crate::connections::Connections,
    /// The corrected latency in log-spaced buckets (upper bound µs, count), for people.
    #[serde(skip)]
    pub histogram: Vec<(u64, u64)>,
}

/// What the load was asked to be (for the rate and stage reports).
#[derive(Debug, Clone, Copy, Default)]
pub struct Shape<'a> {
    pub rate: Option<f64>,
    pub stages: Option<&'a Plan>,
    /// `--streams`: the workers (named in the falling-behind warning).
    pub workers: usize,
    /// Under `--rate` with `--duration`: how long sends were due after warmup.
    pub window: Option<Duration>,
}

/// Recorders merged: histograms and counts of the whole run.
pub struct Merged {
    pub corrected: Histogram<u64>,
    pub uncorrected: Histogram<u64>,
    pub failed: Histogram<u64>,
    pub lateness: Histogram<u64>,
    pub counts: Counts,
    pub per_rpc: PerRpc,
    pub errors: ErrorTally,
    pub stages: Option<StageTally>,
}

/// Adds up every worker's histograms and counts.
pub fn merge(recorders: &[Recorder]) -> Merged {
    let mut merged = Merged {
        corrected: new_histogram(),
        uncorrected: new_histogram(),
        failed: new_histogram(),
        lateness: new_histogram(),
        counts: Counts::default(),
        per_rpc: PerRpc::default(),
        errors: ErrorTally::default(),
        stages: None,
    };
    for rec in recorders {
        merged.per_rpc.add(&rec.per_rpc);
        merged.errors.merge(&rec.errors);
        match (&mut merged.stages, &rec.stages) {
            (Some(total), Some(tally)) => total.add(tally),
            (None, Some(tally)) => merged.stages = Some(tally.clone()),
            _ => {}
        }
        // Auto-resizing histograms of equal precision always add.
        let _ = merged.corrected.add(&rec.corrected);
        let _ = merged.uncorrected.add(rec.uncorrected());
        let _ = merged.failed.add(&rec.failed);
        let _ = merged.lateness.add(&rec.lateness);
        let (c, r) = (&mut merged.counts, &rec.counts);
        c.approved += r.approved;
        c.insufficient_funds += r.insufficient_funds;
        c.not_applied += r.not_applied;
        c.errors += r.errors;
        c.bad_outcomes += r.bad_outcomes;
        c.measured += r.measured;
        c.reads += r.reads;
        c.read_errors += r.read_errors;
        c.duplicates += r.duplicates;
        c.duplicates_aborted += r.duplicates_aborted;
        c.duplicate_errors += r.duplicate_errors;
        c.invalid_sent += r.invalid_sent;
        c.invalid_refused_as_expected += r.invalid_refused_as_expected;
        c.invalid_wrong += r.invalid_wrong;
        c.invalid_unanswered += r.invalid_unanswered;
        for (total, n) in c.by_status.iter_mut().zip(r.by_status) {
            *total += n;
        }
    }
    merged
}

/// Percentiles of `h` (all zero when empty).
pub fn latency(h: &Histogram<u64>) -> Latency {
    let q = |quantile| {
        if h.is_empty() {
            0
        } else {
            h.value_at_quantile(quantile)
        }
    };
    Latency {
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        p999: q(0.999),
        p9999: q(0.9999),
        max: if h.is_empty() { 0 } else { h.max() },
        mean: if h.is_empty() { 0.0 } else { h.mean() },
        count: h.len(),
        min: if h.is_empty() { 0 } else { h.min() },
        stddev: if h.is_empty() { 0.0 } else { h.stdev() },
    }
}

/// Builds the summary of a run.
pub fn summarize(
    merged: &Merged,
    settlement: Settlement,
    measured: Duration,
    consistency: Consistency,
    config: serde_json::Value,
    shape: Shape<'_>,
) -> Summary {
    let c = &merged.counts;
    let secs = measured.as_secs_f64();
    let throughput = if secs > 0.0 { c.measured as f64 / secs } else { 0.0 };
    let stages = sections::stages(shape.stages, merged.stages.as_ref());
    let open_loop = shape.rate.is_some() || shape.stages.is_some();
    let warnings = schedule::warnings(&schedule::Kept {
        lateness: &merged.lateness,
        workers: shape.workers,
        rate: shape.rate.map(|r| (r, shape.window)),
        stages: stages.as_deref(),
    });
    Summary {
        started_at: String::new(),
        tool_version: env!("CARGO_PKG_VERSION"),
        command_line: Vec::new(),
        thresholds: Vec::new(),
        throughput_ops_per_s: throughput,
        measured_s: secs,
        latency_us: latency(&merged.corrected),
        latency_us_uncorrected: latency(&merged.uncorrected),
        latency_failed_us: latency(&merged.failed),
        schedule: schedule::report(open_loop, &merged.lateness),
        warnings,
        operations: operations(c, &settlement),
        status_codes: status_codes(&c.by_status),
        extras: Extras {
            reads: c.reads,
            read_errors: c.read_errors,
            duplicates: c.duplicates,
            duplicates_aborted: c.duplicates_aborted,
            duplicate_errors: c.duplicate_errors,
            invalid_sent: c.invalid_sent,
            invalid_refused_as_expected: c.invalid_refused_as_expected,
            invalid_wrong: c.invalid_wrong,
            invalid_unanswered: c.invalid_unanswered,
        },
        consistency,
        config,
        per_rpc: sections::per_rpc(&merged.per_rpc),
        errors: merged
            .errors
            .groups(|code| status_name(usize::try_from(code).unwrap_or(2))),
        rate: sections::rate(shape, throughput),
        stages,
        connections: crate::connections::counted(),
        histogram: ascii::buckets(&merged.corrected, ascii::BUCKETS),
    }
}

/// The numbers `--threshold` expressions are checked against: the corrected
/// latency, calls ended in an error status in percent of all ops, ops/s.
pub fn measured(s: &Summary) -> Measured {
    let l = &s.latency_us;
    let o = &s.operations;
    let error_rate_pct = if o.total > 0 {
        100.0 * o.errors as f64 / o.total as f64
    } else {
        0.0
    };
    Measured {
        p50_us: l.p50,
        p90_us: l.p90,
        p99_us: l.p99,
        p999_us: l.p999,
        max_us: l.max,
        error_rate_pct,
        throughput_ops_per_s: s.throughput_ops_per_s,
    }
}

fn operations(c: &Counts, settlement: &Settlement) -> Operations {
    Operations {
        total: c.by_status.iter().sum(),
        approved: c.approved,
        insufficient_funds: c.insufficient_funds,
        not_applied: c.not_applied,
        errors: c.errors,
        indeterminate: settlement.indeterminate,
        resolved: settlement.resolved,
        resolved_applied: settlement.resolved_applied,
        unresolved: settlement.indeterminate - settlement.resolved,
    }
}

fn status_codes(by_status: &[u64; STATUS_CODES]) -> BTreeMap<String, u64> {
    by_status
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(code, n)| (status_name(code), *n))
        .collect()
}

/// The canonical upper-case name of a gRPC status code.
pub fn status_name(code: usize) -> String {
    let code = Code::from(i32::try_from(code).unwrap_or(2));
    format!("{code:?}")
        .chars()
        .enumerate()
        .flat_map(|(i, ch)| {
            let sep = (i > 0 && ch.is_uppercase()).then_some('_');
            sep.into_iter().chain(ch.to_uppercase())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_are_canonical() {
        assert_eq!(status_name(0), "OK");
        assert_eq!(status_name(4), "DEADLINE_EXCEEDED");
        assert_eq!(status_name(8), "RESOURCE_EXHAUSTED");
        assert_eq!(status_name(14), "UNAVAILABLE");
    }

    #[test]
    fn latency_of_a_known_distribution() {
        let mut h = new_histogram();
        for v in 1..=1000 {
            h.record(v).unwrap();
        }
        let l = latency(&h);
        assert_eq!((l.p50, l.max, l.count), (500, 1000, 1000));
        assert!((l.p99 as i64 - 990).abs() <= 1);
    }
}
