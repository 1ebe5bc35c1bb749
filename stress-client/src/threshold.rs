//! `--threshold EXPR`: absolute gates for CI, like k6's thresholds. An
//! expression names one measured number and a limit it must stay on the
//! right side of: `p50|p90|p99|p99.9|max < DURATION` (5ms, 250us, 1.5s),
//! `error_rate < PCT%`, `throughput > OPS`. Parsing is strict (a typo must
//! not silently pass a CI gate); a crossed threshold makes the run exit 4.
//! This file knows nothing of the report: it is given the numbers.

use serde::Serialize;

/// A latency percentile a threshold can name, with its spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Percentile {
    P50,
    P90,
    P99,
    P999,
    Max,
}

const PERCENTILES: [(&str, Percentile); 5] = [
    ("p50", Percentile::P50),
    ("p90", Percentile::P90),
    ("p99", Percentile::P99),
    ("p99.9", Percentile::P999),
    ("max", Percentile::Max),
];

/// What a threshold measures, and its limit in that number's unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gate {
    /// Corrected latency (`latency_us`) strictly below this many µs.
    LatencyBelow(Percentile, f64),
    /// Calls ended in an error status, in percent of all ops, strictly below.
    ErrorRateBelow(f64),
    /// Measured ops/s strictly above.
    ThroughputAbove(f64),
}

/// One parsed `--threshold`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As given (trimmed), for the report.
    pub expression: String,
    pub gate: Gate,
}

/// The numbers thresholds are checked against.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measured {
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub error_rate_pct: f64,
    pub throughput_ops_per_s: f64,
}

/// One threshold checked (`thresholds[]` in the JSON report).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub expression: String,
    /// The measured number: µs for latencies, percent for `error_rate`,
    /// ops/s for `throughput`.
    pub value: f64,
    /// The value's unit: `us`, `percent` or `ops/s`.
    pub unit: &'static str,
    pub passed: bool,
}

/// Parses an expression (clap's value parser for `--threshold`).
pub fn parse(text: &str) -> Result<Threshold, String> {
    let expression = text.trim().to_owned();
    let bad = |why: &str| {
        format!(
            "bad threshold {expression:?}: {why} (expected `p50|p90|p99|p99.9|max < DURATION`, \
             `error_rate < PCT%` or `throughput > OPS`)"
        )
    };
    let (name, op, limit) =
        split(&expression).ok_or_else(|| bad("not one metric, one `<` or `>`, one limit"))?;
    let gate = match (name, op) {
        ("error_rate", '<') => Gate::ErrorRateBelow(percent(limit).map_err(|e| bad(&e))?),
        ("throughput", '>') => Gate::ThroughputAbove(ops(limit).map_err(|e| bad(&e))?),
        ("error_rate", _) | ("throughput", _) => return Err(bad("wrong direction")),
        (name, '<') => {
            let p = PERCENTILES
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| bad(&format!("unknown metric {name:?}")))?;
            Gate::LatencyBelow(p.1, duration_us(limit).map_err(|e| bad(&e))?)
        }
        (name, _) if PERCENTILES.iter().any(|(n, _)| *n == name) => {
            return Err(bad("latency limits are upper bounds: use `<`"))
        }
        (name, _) => return Err(bad(&format!("unknown metric {name:?}"))),
    };
    Ok(Threshold { expression, gate })
}

/// `name OP limit` around the only `<` or `>`.
fn split(expression: &str) -> Option<(&str, char, &str)> {
    let at = expression.find(['<', '>'])?;
    let op = expression[at..].chars().next()?;
    let (name, limit) = (expression[..at].trim(), expression[at + 1..].trim());
    if limit.contains(['<', '>', '=']) || name.is_empty() || limit.is_empty() {
        return None;
    }
    Some((name, op, limit))
}

/// A finite number, 0 or more.
fn number(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{text:?} is not a number, 0 or more")),
    }
}

/// `5ms`, `250us` (or `µs`), `1.5s`: the unit is required.
fn duration_us(text: &str) -> Result<f64, String> {
    let units = [("us", 1.0), ("µs", 1.0), ("ms", 1e3), ("s", 1e6)];
    let (value, scale) = units
        .iter()
        .find_map(|(unit, scale)| text.strip_suffix(unit).map(|v| (v, *scale)))
        .ok_or_else(|| format!("{text:?} needs a unit: us, ms or s"))?;
    Ok(number(value)? * scale)
}

/// `1%`, `0.5%`: the sign is required, so 1 cannot be read as 100 %.
fn percent(text: &str) -> Result<f64, String> {
    let value = text
        .strip_suffix('%')
        .ok_or_else(|| format!("{text:?} needs a % sign"))?;
    let pct = number(value)?;
    if pct > 100.0 {
        return Err(format!("{text:?} is more than 100%"));
    }
    Ok(pct)
}

/// `1000` or `1000/s`.
fn ops(text: &str) -> Result<f64, String> {
    number(text.strip_suffix("/s").unwrap_or(text))
}

impl Threshold {
    /// Checks the threshold against `m`.
    pub fn check(&self, m: &Measured) -> Outcome {
        let (value, unit, passed) = match self.gate {
            Gate::LatencyBelow(p, limit_us) => {
                let us = match p {
                    Percentile::P50 => m.p50_us,
                    Percentile::P90 => m.p90_us,
                    Percentile::P99 => m.p99_us,
                    Percentile::P999 => m.p999_us,
                    Percentile::Max => m.max_us,
                } as f64;
                (us, "us", us < limit_us)
            }
            Gate::ErrorRateBelow(pct) => (m.error_rate_pct, "percent", m.error_rate_pct < pct),
            Gate::ThroughputAbove(o) => {
                let v = m.throughput_ops_per_s;
                (v, "ops/s", v > o)
            }
        };
        Outcome {
            expression: self.expression.clone(),
            value,
            unit,
            passed,
        }
    }
}

/// Checks every threshold, in the order given.
pub fn check_all(thresholds: &[Threshold], m: &Measured) -> Vec<Outcome> {
    thresholds.iter().map(|t| t.check(m)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(text: &str) -> Gate {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}")).gate
    }

    #[test]
    fn the_documented_forms_parse() {
        assert_eq!(gate("p99 < 5ms"), Gate::LatencyBelow(Percentile::P99, 5000.0));
        assert_eq!(gate("p50<250us"), Gate::LatencyBelow(Percentile::P50, 250.0));
        assert_eq!(
            gate(" p99.9 < 1.5s "),
            Gate::LatencyBelow(Percentile::P999, 1.5e6)
        );
        assert_eq!(gate("max < 2µs"), Gate::LatencyBelow(Percentile::Max, 2.0));
        assert_eq!(gate("p90 < 0s"), Gate::LatencyBelow(Percentile::P90, 0.0));
        assert_eq!(gate("error_rate < 1%"), Gate::ErrorRateBelow(1.0));
        assert_eq!(gate("error_rate < 0.5%"), Gate::ErrorRateBelow(0.5));
        assert_eq!(gate("throughput > 1000"), Gate::ThroughputAbove(1000.0));
        assert_eq!(gate("throughput > 250.5/s"), Gate::ThroughputAbove(250.5));
        assert_eq!(parse(" p99 < 5ms").unwrap().expression, "p99 < 5ms");
    }

    #[test]
    fn anything_else_is_an_error_naming_the_expression() {
        for bad in [
            "",
            "p99",
            "p99 5ms",
            "p99 < 5",
            "p99 < 5 ms x",
            "p99 < -5ms",
            "p99 < NaNms",
            "p99 > 5ms",
            "p99 <= 5ms",
            "p99 < 5ms < 6ms",
            "p95 < 5ms",
            "P99 < 5ms",
            "error_rate < 1",
            "error_rate > 1%",
            "error_rate < 101%",
            "throughput < 5",
            "throughput > 5k",
            "latency < 5ms",
            "< 5ms",
            "p99 < ",
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains(&format!("{:?}", bad.trim())), "{bad}: {err}");
        }
    }

    #[test]
    fn checks_are_strict_and_report_the_measured_value() {
        let m = Measured {
            p50_us: 100,
            p99_us: 5000,
            max_us: 9000,
            error_rate_pct: 0.5,
            throughput_ops_per_s: 1000.0,
            ..Measured::default()
        };
        let outcome = |text: &str| parse(text).unwrap().check(&m);
        assert!(outcome("p50 < 101us").passed);
        assert!(!outcome("p99 < 5ms").passed, "equal is crossed");
        assert_eq!(outcome("p99 < 5ms").value, 5000.0);
        assert!(outcome("p99 < 5.001ms").passed);
        assert!(!outcome("max < 9ms").passed);
        assert!(outcome("error_rate < 1%").passed);
        assert!(!outcome("error_rate < 0.5%").passed);
        assert!(!outcome("throughput > 1000").passed);
        assert!(outcome("throughput > 999.9").passed);
        let all = check_all(&[parse("p50 < 1s").unwrap(), parse("p99 < 1us").unwrap()], &m);
        assert_eq!(all.iter().map(|o| o.passed).collect::<Vec<_>>(), [true, false]);
    }
}
