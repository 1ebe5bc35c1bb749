//! The files a run writes besides stdout: `--json` (the summary), `--hgrm`
//! (the corrected latency distribution), `--histogram-log` (one histogram
//! per second), `--csv` (one row per second) and `--html` (the charts).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use crate::cli::RunArgs;
use crate::drive::HISTOGRAM_LOG_INTERVAL;
use crate::histlog;
use crate::report::html::{self, Page};
use crate::report::{hgrm, Merged, Summary};
use crate::timeline::{self, Intervals};

/// What the `.hgrm` file holds, as its footer says.
const HGRM_LATENCY: &str =
    "corrected latency (from each op's intended send time; the actual send time in closed loop)";

/// Writes every output file the flags ask for.
pub fn write(
    args: &RunArgs,
    summary: &Summary,
    merged: &Merged,
    timeline: &Intervals,
    wall_start: SystemTime,
) -> Result<(), String> {
    if let Some(path) = &args.json {
        let text =
            serde_json::to_string_pretty(summary).map_err(|e| format!("cannot encode the report: {e}"))?;
        save(path, text + "\n")?;
    }
    if let Some(path) = &args.hgrm {
        save(path, hgrm::render(&merged.corrected, HGRM_LATENCY))?;
    }
    if let Some(path) = &args.histogram_log {
        let histograms: BTreeMap<_, _> = timeline
            .iter()
            .filter(|(_, i)| !i.latency.is_empty())
            .map(|(k, i)| (*k, i.latency.clone()))
            .collect();
        histlog::write(path, &histograms, HISTOGRAM_LOG_INTERVAL, wall_start)?;
    }
    let rows = timeline::rows(timeline, HISTOGRAM_LOG_INTERVAL, edges(args));
    if let Some(path) = &args.csv {
        save(path, timeline::csv(&rows))?;
    }
    if let Some(path) = &args.html {
        let page = Page {
            summary,
            rows: &rows,
            corrected: &merged.corrected,
            uncorrected: &merged.uncorrected,
            open_loop: args.rate.is_some() || args.stages.is_some(),
            requested: requested(args, &rows),
        };
        save(path, html::render(&page))?;
    }
    Ok(())
}

/// Where warmup ends and sends stop, for the timeline's phases.
fn edges(args: &RunArgs) -> timeline::Edges {
    let load_end = match (args.requests, &args.stages) {
        (Some(_), _) => None,
        (None, Some(plan)) => Some(plan.total()),
        (None, None) => Some(args.warmup + args.duration),
    };
    timeline::Edges {
        warmup: args.warmup,
        load_end,
    }
}

/// The requested rate at the middle of each row's interval (open loop only).
fn requested(args: &RunArgs, rows: &[timeline::Row]) -> Vec<(f64, f64)> {
    let half = HISTOGRAM_LOG_INTERVAL.as_secs_f64() / 2.0;
    let rate_at = |t: f64| match (&args.stages, args.rate) {
        (Some(plan), _) => Some(plan.rate_at(t - half)),
        (None, Some(rate)) => {
            let load_s = match args.requests {
                Some(n) => n as f64 / rate,
                None => (args.warmup + args.duration).as_secs_f64(),
            };
            Some(if t - half < load_s { rate } else { 0.0 })
        }
        (None, None) => None,
    };
    rows.iter()
        .filter_map(|r| rate_at(r.time_s).map(|rate| (r.time_s, rate)))
        .collect()
}

fn save(path: &Path, text: String) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
