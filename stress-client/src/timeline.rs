//! The run second by second: ops and errors completed in each interval and
//! the latency of the measured ones. Workers send one [`Interval`] per second
//! they were busy (see `recorder::IntervalSink`); a collector adds them up.
//! The timeline feeds the interval log, `--csv` and the HTML charts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::recorder::new_histogram;

/// One worker's (or, added up, the run's) share of one interval.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Corrected latency (µs) of the measured ops completed in the interval.
    pub latency: Histogram<u64>,
    pub ops: u64,
    pub errors: u64,
}

impl Default for Interval {
    fn default() -> Self {
        Interval {
            latency: new_histogram(),
            ops: 0,
            errors: 0,
        }
    }
}

impl Interval {
    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.ops == 0 && self.latency.is_empty()
    }

    /// Adds another worker's share of the same interval.
    pub fn add(&mut self, other: &Interval) {
        self.ops += other.ops;
        self.errors += other.errors;
        // Auto-resizing histograms of equal precision always add.
        let _ = self.latency.add(&other.latency);
    }
}

/// Intervals by index (interval k covers [k, k+1) × the interval length).
pub type Intervals = BTreeMap<u64, Interval>;

/// One row of the timeline (a `--csv` line).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// The interval's end, seconds from the start of the load.
    pub time_s: f64,
    pub ops: u64,
    pub errors: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// The header of `--csv`.
pub const CSV_HEADER: &str = "time_s,ops,errors,p50_us,p99_us,max_us";

/// One row per interval from the first to the last (empty ones included).
pub fn rows(intervals: &Intervals, length: Duration) -> Vec<Row> {
    let Some(last) = intervals.keys().next_back().copied() else {
        return Vec::new();
    };
    let empty = Interval::default();
    (0..=last)
        .map(|k| {
            let i = intervals.get(&k).unwrap_or(&empty);
            let q = |q| {
                if i.latency.is_empty() {
                    0
                } else {
                    i.latency.value_at_quantile(q)
                }
            };
            Row {
                time_s: length.as_secs_f64() * (k + 1) as f64,
                ops: i.ops,
                errors: i.errors,
                p50_us: q(0.5),
                p99_us: q(0.99),
                max_us: if i.latency.is_empty() { 0 } else { i.latency.max() },
            }
        })
        .collect()
}

/// The rows as CSV text with [`CSV_HEADER`].
pub fn csv(rows: &[Row]) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{}",
            r.time_s, r.ops, r.errors, r.p50_us, r.p99_us, r.max_us
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_fill_gaps_and_csv_has_one_line_each() {
        let mut intervals = Intervals::new();
        let mut a = Interval {
            ops: 3,
            errors: 1,
            ..Interval::default()
        };
        for v in [100, 200, 300] {
            a.latency.record(v).unwrap();
        }
        intervals.insert(0, a.clone());
        intervals.entry(2).or_default().add(&a);
        let rows = rows(&intervals, Duration::from_secs(1));
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].ops, 0);
        assert_eq!((rows[2].time_s, rows[2].ops, rows[2].errors), (3.0, 3, 1));
        assert_eq!(rows[0].max_us, a.latency.highest_equivalent(300));
        let text = csv(&rows);
        assert_eq!(text.lines().count(), 4);
        assert!(text.starts_with("time_s,ops,errors,p50_us,p99_us,max_us\n1,3,1,"));
    }
}
