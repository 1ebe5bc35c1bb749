//! The run second by second: ops and errors completed in each interval and
//! the latency of the measured ones. Workers send one [`Interval`] per second
//! they were busy (see `recorder::IntervalSink`); a collector adds them up.
//! The timeline feeds the interval log, `--csv` and the HTML charts. Each
//! second has a phase (warmup, measured, drain): the edges of a run are
//! partial seconds, and a chart or a spreadsheet must not read their low
//! counts or missing latencies as the server collapsing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::histogram::new_histogram;
use crate::progress::Live;

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

/// Once interval `index` has begun arriving, the one before it is (nearly)
/// whole: its p99 goes to the progress line.
pub fn publish_last_p99(intervals: &Intervals, index: u64, live: &Live) {
    let Some(prev) = index.checked_sub(1).and_then(|k| intervals.get(&k)) else {
        return;
    };
    if !prev.latency.is_empty() {
        let p99 = prev.latency.value_at_quantile(0.99);
        live.last_second_p99_us_plus_1
            .store(p99.saturating_add(1), std::sync::atomic::Ordering::Relaxed);
    }
}

/// Which part of the run a second belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// It overlaps the warmup: its ops count, their latency does not.
    Warmup,
    /// Wholly inside the measured window.
    Measured,
    /// It reaches past the end of the load: replies to the last sends, a
    /// partial second.
    Drain,
}

impl Phase {
    /// The `phase` column's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Warmup => "warmup",
            Phase::Measured => "measured",
            Phase::Drain => "drain",
        }
    }
}

/// Where the load's phases end, from the start of the load.
#[derive(Debug, Clone, Copy, Default)]
pub struct Edges {
    pub warmup: Duration,
    /// When sends stop (`None` under `--requests`: then the last second is
    /// the drain).
    pub load_end: Option<Duration>,
}

impl Edges {
    /// The phase of interval `k` of `length`, the last being `last`.
    pub fn phase(&self, k: u64, last: u64, length: Duration) -> Phase {
        let start = length.as_secs_f64() * k as f64;
        let end = start + length.as_secs_f64();
        if start < self.warmup.as_secs_f64() {
            return Phase::Warmup;
        }
        let drain = match self.load_end {
            Some(load_end) => end > load_end.as_secs_f64(),
            None => k == last,
        };
        if drain {
            Phase::Drain
        } else {
            Phase::Measured
        }
    }
}

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
    /// Latencies behind p50/p99/max (none: the cells are empty, not 0).
    pub samples: u64,
    pub phase: Phase,
}

/// The header of `--csv`.
pub const CSV_HEADER: &str = "time_s,ops,errors,p50_us,p99_us,max_us,phase";

/// One row per interval from the first to the last (empty ones included).
pub fn rows(intervals: &Intervals, length: Duration, edges: Edges) -> Vec<Row> {
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
                samples: i.latency.len(),
                phase: edges.phase(k, last, length),
            }
        })
        .collect()
}

/// The rows as CSV text with [`CSV_HEADER`]; a second without measured
/// latencies (warmup, or nothing completed) has empty latency cells.
pub fn csv(rows: &[Row]) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    for r in rows {
        let latency = if r.samples == 0 {
            ",,".to_owned()
        } else {
            format!("{},{},{}", r.p50_us, r.p99_us, r.max_us)
        };
        let _ = writeln!(
            out,
            "{},{},{},{latency},{}",
            r.time_s,
            r.ops,
            r.errors,
            r.phase.as_str()
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
        let rows = rows(&intervals, Duration::from_secs(1), Edges::default());
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].ops, 0);
        assert_eq!((rows[2].time_s, rows[2].ops, rows[2].errors), (3.0, 3, 1));
        assert_eq!(rows[0].max_us, a.latency.highest_equivalent(300));
        let text = csv(&rows);
        assert_eq!(text.lines().count(), 4);
        assert!(text.starts_with("time_s,ops,errors,p50_us,p99_us,max_us,phase\n1,3,1,"));
        // The empty second has no latency cells; the last is the drain (no end given).
        assert_eq!(text.lines().nth(2), Some("2,0,0,,,,measured"));
        assert!(text.ends_with(",drain\n"), "{text}");
    }

    #[test]
    fn the_last_whole_second_p99_goes_live() {
        let live = Live::default();
        let mut intervals = Intervals::new();
        let mut a = Interval::default();
        for v in 1..=100 {
            a.latency.record(v).unwrap();
        }
        intervals.insert(3, a);
        publish_last_p99(&intervals, 3, &live);
        assert_eq!(
            live.last_second_p99_us_plus_1
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
        publish_last_p99(&intervals, 4, &live);
        assert_eq!(
            live.last_second_p99_us_plus_1
                .load(std::sync::atomic::Ordering::Relaxed),
            100
        );
    }

    #[test]
    fn seconds_get_their_phase() {
        let s = Duration::from_secs(1);
        let edges = Edges {
            warmup: Duration::from_millis(1_500),
            load_end: Some(Duration::from_secs(4)),
        };
        let phases: Vec<_> = (0..6).map(|k| edges.phase(k, 5, s).as_str()).collect();
        assert_eq!(
            phases,
            ["warmup", "warmup", "measured", "measured", "drain", "drain"]
        );
        let mut intervals = Intervals::new();
        intervals.insert(
            0,
            Interval {
                ops: 5,
                ..Interval::default()
            },
        );
        intervals.insert(
            5,
            Interval {
                ops: 1,
                ..Interval::default()
            },
        );
        let text = csv(&rows(&intervals, s, edges));
        let lines: Vec<_> = text.lines().collect();
        // Warmup: ops counted, latency cells empty, never zeros.
        assert_eq!(lines[1], "1,5,0,,,,warmup");
        assert_eq!(lines[6], "6,1,0,,,,drain");
        let no_warmup = Edges {
            warmup: Duration::ZERO,
            load_end: Some(Duration::from_secs(6)),
        };
        assert_eq!(no_warmup.phase(0, 5, s), Phase::Measured);
        assert_eq!(no_warmup.phase(5, 5, s), Phase::Measured);
    }
}
