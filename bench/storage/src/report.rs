//! The results: a table on stdout and `bench/results/storage.json`. Each
//! cell reports its best run (by records/s) and the spread between its runs.

use std::time::Duration;

use serde_json::{json, Value};

use crate::cell::{Run, Spec};
use crate::recovery::Recovery;

/// A cell and all its runs.
pub struct Cell {
    pub spec: Spec,
    pub runs: Vec<Run>,
}

impl Cell {
    /// The run with the most records per second.
    pub fn best(&self) -> &Run {
        self.runs
            .iter()
            .max_by(|a, b| a.records_per_s().total_cmp(&b.records_per_s()))
            .expect("a cell has runs")
    }

    /// (best - worst) / best of records/s, as a fraction.
    pub fn spread(&self) -> f64 {
        let rates: Vec<f64> = self.runs.iter().map(Run::records_per_s).collect();
        let (lo, hi) = rates
            .iter()
            .fold((f64::MAX, 0f64), |(l, h), &r| (l.min(r), h.max(r)));
        if hi > 0.0 {
            (hi - lo) / hi
        } else {
            0.0
        }
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1_000.0
}

/// Prints the throughput table.
pub fn print_cells(cells: &[Cell]) {
    println!(
        "{:<15} {:<8} {:>4} {:>3} {:>10} {:>8} {:>9} {:>8} {:>7} {:>7} {:>6}",
        "engine",
        "callers",
        "G",
        "T",
        "records/s",
        "syncs/s",
        "rec/sync",
        "us/rec",
        "p50 ms",
        "p99 ms",
        "spread"
    );
    for c in cells {
        let b = c.best();
        let secs = b.elapsed.as_secs_f64();
        println!(
            "{:<15} {:<8} {:>4} {:>3} {:>10.0} {:>8.0} {:>9.1} {:>8.1} {:>7.2} {:>7.2} {:>11.0} {:>5.0}%",
            c.spec.kind.name(),
            c.spec.mode(),
            c.spec.group,
            c.spec.threads,
            b.records_per_s(),
            b.syncs as f64 / secs,
            b.records as f64 / b.syncs.max(1) as f64,
            1e6 / b.records_per_s(),
            ms(b.latency.value_at_quantile(0.5)),
            ms(b.latency.value_at_quantile(0.99)),
            b.written as f64 / b.records.max(1) as f64,
            c.spread() * 100.0
        );
    }
}

/// Prints the recovery table.
pub fn print_recoveries(recs: &[Recovery]) {
    println!(
        "\n{:<15} {:>9} {:>10} {:>11} {:>9} {:>13}  runs (ms)",
        "engine", "records", "bytes/rec", "populate s", "open ms", "open+load ms"
    );
    for r in recs {
        let runs: Vec<String> = r.total.iter().map(|d| format!("{:.0}", millis(*d))).collect();
        let open = best_open(r).map_or("-".to_string(), |d| format!("{:.1}", millis(d)));
        println!(
            "{:<15} {:>9} {:>10.1} {:>11.1} {:>9} {:>13.0}  {}",
            r.kind.name(),
            r.records,
            r.bytes as f64 / r.records as f64,
            r.populate.as_secs_f64(),
            open,
            millis(best_total(r)),
            runs.join(", ")
        );
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn best_total(r: &Recovery) -> Duration {
    r.total.iter().copied().min().unwrap_or_default()
}

fn best_open(r: &Recovery) -> Option<Duration> {
    r.open.iter().flatten().copied().min()
}

fn cell_json(c: &Cell) -> Value {
    let b = c.best();
    let secs = b.elapsed.as_secs_f64();
    json!({
        "engine": c.spec.kind.name(), "callers": c.spec.mode(),
        "group": c.spec.group, "threads": c.spec.threads,
        "records_per_s": b.records_per_s(), "syncs_per_s": b.syncs as f64 / secs,
        "records_per_sync": b.records as f64 / b.syncs.max(1) as f64,
        "us_per_record": 1e6 / b.records_per_s(),
        "p50_commit_ms": ms(b.latency.value_at_quantile(0.5)),
        "p99_commit_ms": ms(b.latency.value_at_quantile(0.99)),
        "max_commit_ms": ms(b.latency.max()),
        "records": b.records, "seconds": secs, "disk_bytes": b.bytes,
        "written_bytes_per_record": b.written as f64 / b.records.max(1) as f64,
        "spread": c.spread(),
        "runs_records_per_s": c.runs.iter().map(Run::records_per_s).collect::<Vec<_>>(),
    })
}

fn recovery_json(r: &Recovery) -> Value {
    json!({
        "engine": r.kind.name(), "records": r.records, "disk_bytes": r.bytes,
        "bytes_per_record": r.bytes as f64 / r.records as f64,
        "populate_s": r.populate.as_secs_f64(),
        "open_ms": best_open(r).map(millis),
        "open_and_load_ms": millis(best_total(r)),
        "runs_open_and_load_ms": r.total.iter().map(|d| millis(*d)).collect::<Vec<_>>(),
    })
}

/// The whole result as JSON.
pub fn to_json(setup: Value, cells: &[Cell], recs: &[Recovery]) -> Value {
    json!({
        "setup": setup,
        "cells": cells.iter().map(cell_json).collect::<Vec<_>>(),
        "recovery": recs.iter().map(recovery_json).collect::<Vec<_>>(),
    })
}
