//! `--html PATH`: the run as one self-contained page — inline CSS, inline
//! SVG charts drawn by [`super::svg`], no script, font or stylesheet from
//! anywhere, so it opens offline and in CI's headless browser. It shows the
//! verdict and its violations, latency percentiles over time, throughput and
//! errors over time, the percentile spectrum on HdrHistogram's log axis
//! (corrected and uncorrected in open loop), outcomes, the per-RPC
//! breakdown, grouped errors and the stages; in open loop, how late the
//! scheduled sends left and any warning (as the text report).

use std::fmt::Write as _;

use bank_checker::Verdict;
use hdrhistogram::Histogram;

use super::svg::{bar_chart, escape, line_chart, with_bands, Band, LineChart, Series};
use super::units::{duration, us, with_unit};
use super::{Consistency, Summary};
use crate::rpc::Rpc;
use crate::timeline::{Phase, Row};

/// Quantile steps per half-distance to 100% in the spectrum (as `.hgrm`).
const SPECTRUM_TICKS: u32 = 5;
/// The spectrum's x axis ends at this many nines (99.9999%).
const SPECTRUM_NINES_MAX: f64 = 6.0;
/// Violations listed on the page; the rest are counted.
const VIOLATIONS_SHOWN: usize = 100;

/// Series colours: the Okabe–Ito palette, whose colours stay apart for
/// readers with any common colour-vision deficiency (p50, p99 and max are
/// blue, orange and reddish purple; max is also dotted).
const BLUE: &str = "#0072B2";
const VERMILLION: &str = "#D55E00";
const ORANGE: &str = "#E69F00";
const GREEN: &str = "#009E73";
const PURPLE: &str = "#CC79A7";
const SKY: &str = "#56B4E9";
const GREY: &str = "#6b7280";

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px auto;max-width:820px;color:#111}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px}\
.verdict{margin-top:8px;padding:10px 14px;border-radius:6px;font-weight:600;color:#fff}\
.passed{background:#007a5a}.failed{background:#b84f00}.inconclusive{background:#8a6100}\
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 10px;text-align:right;border-bottom:1px solid #e5e7eb}\
td:first-child,th:first-child{text-align:left}\
.chart{width:100%;height:auto;margin:8px 0}.chart .series{fill:none;stroke-width:2}\
.chart .grid{stroke:#e5e7eb}.chart text{font-size:11px;fill:#374151}.chart .title{font-size:13px;font-weight:600}\
.chart path[data-series=\"requested/s\"]{stroke-dasharray:6 4}.chart path[data-series=\"max\"]{stroke-dasharray:2 3}\
.small{color:#6b7280;font-size:13px;overflow-wrap:anywhere}\
.warning{margin:6px 0;padding:8px 12px;border-left:4px solid #E69F00;background:#fff7e6;font-weight:600}";

/// What the HTML report shows.
pub struct Page<'a> {
    pub summary: &'a Summary,
    /// The timeline, one row per second.
    pub rows: &'a [Row],
    pub corrected: &'a Histogram<u64>,
    pub uncorrected: &'a Histogram<u64>,
    /// Open loop: the uncorrected spectrum is drawn too.
    pub open_loop: bool,
    /// Open loop: the requested rate at each row's time.
    pub requested: Vec<(f64, f64)>,
}

/// The whole page.
pub fn render(p: &Page<'_>) -> String {
    let mut out = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>stress-client report</title><style>{STYLE}</style></head><body>"
    );
    header(&mut out, p.summary);
    super::schedule::render_html(&mut out, p.summary.schedule.as_ref(), &p.summary.warnings);
    thresholds_table(&mut out, p.summary);
    out.push_str("<h2>Latency over time</h2>");
    out.push_str(&shaded(latency_over_time(p.rows), p.rows));
    out.push_str("<h2>Throughput and errors over time</h2>");
    out.push_str(&shaded(throughput_over_time(p.rows, &p.requested), p.rows));
    out.push_str("<h2>Percentile spectrum</h2>");
    out.push_str(&spectrum_chart(p));
    out.push_str("<h2>Outcomes</h2>");
    out.push_str(&outcomes(p.summary));
    per_rpc_table(&mut out, p.summary);
    errors_table(&mut out, p.summary);
    stages_table(&mut out, p.summary);
    violations(&mut out, &p.summary.consistency);
    out.push_str("</body></html>\n");
    out
}

fn header(out: &mut String, s: &Summary) {
    let (class, word) = match s.consistency.verdict {
        Verdict::Passed => ("passed", "PASSED"),
        Verdict::Failed => ("failed", "FAILED"),
        Verdict::Inconclusive => ("inconclusive", "INCONCLUSIVE"),
    };
    let l = &s.latency_us;
    let _ = write!(
        out,
        "<h1>stress-client report</h1><details class=\"small\"><summary>{}</summary><pre>{}</pre></details>\
         <div class=\"verdict {class}\" id=\"verdict\">consistency {word}: {} violation(s), {} ops checked</div>\
         <p>{:.1} ops/s over {:.2} s measured; {} ops, {} errors. Latency: p50 {} · p99 {} · \
         p99.9 {} · max {} · min {} · mean {} · stddev {}</p>",
        escape(&config_line(&s.config)),
        escape(&serde_json::to_string_pretty(&s.config).unwrap_or_default()),
        s.consistency.total_violations,
        s.consistency.checked.ops,
        s.throughput_ops_per_s,
        s.measured_s,
        s.operations.total,
        s.operations.errors,
        us(l.p50),
        us(l.p99),
        us(l.p999),
        us(l.max),
        us(l.min),
        duration(l.mean),
        duration(l.stddev)
    );
    if let Some(r) = &s.rate {
        let _ = write!(
            out,
            "<p>Rate: requested {:.1} ops/s, achieved {:.1} ops/s.</p>",
            r.requested, r.achieved
        );
    }
}

/// The servers driven, comma-separated (`config.targets`; `target` in older reports).
fn targets(config: &serde_json::Value) -> String {
    match (&config["targets"], &config["target"]) {
        (serde_json::Value::Array(list), _) => {
            let names: Vec<&str> = list.iter().filter_map(|t| t.as_str()).collect();
            names.join(", ")
        }
        (_, serde_json::Value::String(one)) => one.clone(),
        _ => "-".to_owned(),
    }
}

/// The run's shape in one line: target, mode, streams, connections, load.
fn config_line(config: &serde_json::Value) -> String {
    let text = |key: &str| match &config[key] {
        serde_json::Value::Null => "-".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    format!(
        "{} · {} mode · {} streams on {} connections · duration {} s · rate {} · seed {} (configuration)",
        targets(config),
        text("mode"),
        text("streams"),
        text("connections"),
        text("duration_s"),
        if config["stages"].is_null() {
            text("rate")
        } else {
            "stages".to_owned()
        },
        text("seed")
    )
}

/// The time axis of the timeline charts: every row, data or not.
fn time_range(rows: &[Row]) -> Option<(f64, f64)> {
    Some((rows.first()?.time_s, rows.last()?.time_s))
}

/// A timeline chart with its warmup and drain seconds shaded: partial
/// seconds whose low counts are the run's edges, not the server's.
fn shaded(chart: String, rows: &[Row]) -> String {
    let Some(range) = time_range(rows) else {
        return chart;
    };
    // Points sit at each second's end; a band spans half a step each side.
    let half = match rows {
        [a, b, ..] => (b.time_s - a.time_s) / 2.0,
        _ => 0.5,
    };
    let bands: Vec<Band<'_>> = rows
        .iter()
        .filter(|r| r.phase != Phase::Measured)
        .map(|r| Band {
            from: r.time_s - half,
            to: r.time_s + half,
            phase: r.phase.as_str(),
        })
        .collect();
    with_bands(chart, range, &bands)
}

fn latency_over_time(rows: &[Row]) -> String {
    let points = |f: fn(&Row) -> u64| -> Vec<(f64, f64)> {
        rows.iter()
            .filter(|r| r.max_us > 0)
            .map(|r| (r.time_s, f(r) as f64))
            .collect()
    };
    line_chart(&LineChart {
        title: "Corrected latency per second",
        x_label: "seconds since start",
        y_label: "latency",
        series: vec![
            Series {
                name: "p50",
                color: BLUE,
                points: points(|r| r.p50_us),
            },
            Series {
                name: "p99",
                color: ORANGE,
                points: points(|r| r.p99_us),
            },
            Series {
                name: "max",
                color: PURPLE,
                points: points(|r| r.max_us),
            },
        ],
        x_ticks: None,
        x_range: time_range(rows),
        y_durations: true,
    })
}

fn throughput_over_time(rows: &[Row], requested: &[(f64, f64)]) -> String {
    let points =
        |f: fn(&Row) -> u64| -> Vec<(f64, f64)> { rows.iter().map(|r| (r.time_s, f(r) as f64)).collect() };
    line_chart(&LineChart {
        title: "Ops completed and errors per second",
        x_label: "seconds since start",
        y_label: "per second",
        series: vec![
            Series {
                name: "ops/s",
                color: BLUE,
                points: points(|r| r.ops),
            },
            Series {
                name: "errors/s",
                color: VERMILLION,
                points: points(|r| r.errors),
            },
            Series {
                name: "requested/s",
                color: GREY,
                points: requested.to_vec(),
            },
        ],
        x_ticks: None,
        x_range: time_range(rows),
        y_durations: false,
    })
}

/// `h` as (nines, latency) points: x = log10(1 / (1 - quantile)).
pub fn spectrum(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let last = (h.len() as f64).log10().min(SPECTRUM_NINES_MAX);
    h.iter_quantiles(SPECTRUM_TICKS)
        .map(|v| {
            let q = v.quantile_iterated_to();
            let x = if q < 1.0 {
                (1.0 / (1.0 - q)).log10().min(last)
            } else {
                last
            };
            (x, h.highest_equivalent(v.value_iterated_to()).min(h.max()) as f64)
        })
        .collect()
}

fn spectrum_chart(p: &Page<'_>) -> String {
    let labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"];
    let ticks = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (i as f64, (*l).to_owned()))
        .collect();
    let mut series = vec![Series {
        name: "corrected",
        color: BLUE,
        points: spectrum(p.corrected),
    }];
    if p.open_loop {
        series.push(Series {
            name: "uncorrected",
            color: SKY,
            points: spectrum(p.uncorrected),
        });
    }
    line_chart(&LineChart {
        title: "Latency by percentile (log axis)",
        x_label: "percentile",
        y_label: "latency",
        series,
        x_ticks: Some(ticks),
        x_range: None,
        y_durations: true,
    })
}

fn outcomes(s: &Summary) -> String {
    let o = &s.operations;
    let mut bars = vec![
        ("approved".to_owned(), o.approved, GREEN),
        ("insufficient funds".to_owned(), o.insufficient_funds, BLUE),
        ("not applied".to_owned(), o.not_applied, GREY),
        ("errors".to_owned(), o.errors, VERMILLION),
    ];
    bars.extend(
        s.status_codes
            .iter()
            .map(|(code, n)| (format!("status {code}"), *n, ORANGE)),
    );
    bar_chart("Outcomes and status codes of the money ops", &bars)
}

/// Each `--threshold` with its measured value, and when and by what the run was made.
fn thresholds_table(out: &mut String, s: &Summary) {
    let _ = write!(
        out,
        "<p class=\"small\">started {} · stress-client {}</p>",
        escape(&s.started_at),
        escape(s.tool_version)
    );
    if s.thresholds.is_empty() {
        return;
    }
    out.push_str("<table id=\"thresholds\"><tr><th>threshold</th><th>measured</th><th>result</th></tr>");
    for t in &s.thresholds {
        let measured = with_unit(t.value, t.unit);
        let result = if t.passed { "ok" } else { "CROSSED" };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{measured}</td><td>{result}</td></tr>",
            escape(&t.expression)
        );
    }
    out.push_str("</table>");
}

fn per_rpc_table(out: &mut String, s: &Summary) {
    out.push_str(
        "<h2>Per RPC</h2><table id=\"per-rpc\"><tr><th>call</th><th>calls</th><th>p50</th>\
        <th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>mean</th></tr>",
    );
    for rpc in Rpc::ALL {
        let Some(r) = s.per_rpc.get(rpc.key()).filter(|r| r.count > 0) else {
            continue;
        };
        let l = &r.latency_us;
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(rpc.label()),
            r.count,
            us(l.p50),
            us(l.p90),
            us(l.p99),
            us(l.p999),
            us(l.max),
            duration(l.mean)
        );
    }
    out.push_str("</table>");
}

fn errors_table(out: &mut String, s: &Summary) {
    if s.errors.is_empty() {
        out.push_str("<h2>Errors</h2><p>None.</p>");
        return;
    }
    out.push_str(
        "<h2>Errors</h2><table id=\"errors\"><tr><th>status</th><th>count</th><th style=\"text-align:left\">message</th></tr>",
    );
    for g in &s.errors {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
            escape(&g.code),
            g.count,
            escape(&g.message)
        );
    }
    out.push_str("</table>");
}

fn stages_table(out: &mut String, s: &Summary) {
    let Some(stages) = &s.stages else { return };
    out.push_str(
        "<h2>Stages</h2><table id=\"stages\"><tr><th>stage</th><th>length s</th><th>requested/s</th>\
        <th>sent/s</th><th>ops</th><th>p50</th><th>p99</th><th>max</th></tr>",
    );
    for (i, st) in stages.iter().enumerate() {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{:.1}</td><td>{:.0}..{:.0}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            st.duration_s,
            st.rate_from,
            st.rate_to,
            st.rate_achieved,
            st.ops,
            us(st.latency_us.p50),
            us(st.latency_us.p99),
            us(st.latency_us.max)
        );
    }
    out.push_str("</table>");
}

/// The verdict section (also written by `check --html`).
pub fn violations(out: &mut String, c: &Consistency) {
    out.push_str("<h2>Verdict</h2>");
    for reason in &c.undecided {
        let _ = write!(out, "<p>Undecided: {}</p>", escape(reason));
    }
    if c.violations.is_empty() {
        out.push_str("<p>No violation: one order of all ops explains every answer, read and balance.</p>");
        return;
    }
    out.push_str("<table id=\"violations\"><tr><th>kind</th><th>account</th><th style=\"text-align:left\">detail</th></tr>");
    for v in c.violations.iter().take(VIOLATIONS_SHOWN) {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
            escape(v.kind.as_str()),
            escape(&v.account_id.to_string()),
            escape(&v.detail)
        );
    }
    out.push_str("</table>");
    let shown = c.violations.len().min(VIOLATIONS_SHOWN) as u64;
    if c.total_violations > shown {
        let _ = write!(out, "<p>… and {} more.</p>", c.total_violations - shown);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::new_histogram;

    #[test]
    fn the_spectrum_climbs_the_nines_to_the_max() {
        let mut h = new_histogram();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let s = spectrum(&h);
        assert!(s.len() > 10);
        assert!(s.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        let last = s.last().unwrap();
        assert!(
            (last.0 - 4.0).abs() < 1e-9 && last.1 == h.max() as f64,
            "{last:?}"
        );
        assert!(spectrum(&new_histogram()).is_empty());
    }
}
