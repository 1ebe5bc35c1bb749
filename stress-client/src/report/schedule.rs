//! How well the load generator kept its own schedule (`--rate`, `--stages`):
//! the lateness of its scheduled sends (JSON `schedule.lateness_us`) and
//! the warnings a reader needs before trusting the numbers (JSON
//! `warnings`): sends that left late, and stages whose sends fell short of
//! the rate asked for. A generator that falls behind must say so: its
//! corrected latency then includes its own delay.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::svg::escape;
use super::units::us;
use super::StageReport;

/// Lateness p99 (µs) above which the report warns that the corrected
/// latency includes the generator's own delay.
pub const LATE_P99_WARN_US: u64 = 1_000;

/// Share of the requested rate below which a stage's sends count as fallen behind.
pub const BEHIND_SHARE: f64 = 0.95;

/// The generator's lateness (`schedule`), in open loop only.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleReport {
    pub lateness_us: Lateness,
}

/// Actual send − scheduled send, over the scheduled sends after warmup (µs).
#[derive(Debug, Clone, Serialize)]
pub struct Lateness {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
    /// Sends counted.
    pub count: u64,
}

/// What the warnings are computed from.
pub struct Kept<'a> {
    pub lateness: &'a Histogram<u64>,
    /// `--streams`: the workers that send.
    pub workers: usize,
    /// Under `--rate`: ops/s asked for and the time sends were due in
    /// after warmup (`--duration`; none under `--requests`).
    pub rate: Option<(f64, Option<Duration>)>,
    pub stages: Option<&'a [StageReport]>,
}

/// The lateness report (None in a closed loop, where nothing is scheduled).
pub fn report(open_loop: bool, h: &Histogram<u64>) -> Option<ScheduleReport> {
    open_loop.then(|| {
        let q = |q| if h.is_empty() { 0 } else { h.value_at_quantile(q) };
        ScheduleReport {
            lateness_us: Lateness {
                p50: q(0.5),
                p99: q(0.99),
                max: if h.is_empty() { 0 } else { h.max() },
                count: h.len(),
            },
        }
    })
}

/// Every warning about the schedule, in words.
pub fn warnings(k: &Kept<'_>) -> Vec<String> {
    let mut out = Vec::new();
    if !k.lateness.is_empty() && k.lateness.value_at_quantile(0.99) > LATE_P99_WARN_US {
        out.push(format!(
            "scheduled sends left late (lateness p99 {}, max {}, over {}): the corrected latency includes the load generator's own delay",
            us(k.lateness.value_at_quantile(0.99)),
            us(k.lateness.max()),
            us(LATE_P99_WARN_US)
        ));
    }
    if let (Some((requested, Some(window))), None) = (k.rate, k.stages) {
        let sent = k.lateness.len() as f64 / window.as_secs_f64().max(f64::MIN_POSITIVE);
        behind(&mut out, "the run", requested, sent, k.workers);
    }
    for (i, s) in k.stages.unwrap_or_default().iter().enumerate() {
        behind(
            &mut out,
            &format!("stage {}", i + 1),
            s.rate_requested,
            s.rate_achieved,
            k.workers,
        );
    }
    out
}

/// Warns when `sent` ops/s fell below [`BEHIND_SHARE`] of `requested`.
fn behind(out: &mut Vec<String>, what: &str, requested: f64, sent: f64, workers: usize) {
    if requested > 0.0 && sent < requested * BEHIND_SHARE {
        out.push(format!(
            "{what} sent {sent:.0} ops/s of {requested:.0} requested: all {workers} workers busy: add --streams"
        ));
    }
}

/// The lateness in words: `p50 5 µs  p99 40 µs  max 1.20 ms (4 scheduled sends)`.
fn lateness_words(l: &Lateness, sep: &str) -> String {
    format!(
        "p50 {}{sep}p99 {}{sep}max {} ({} scheduled sends)",
        us(l.p50),
        us(l.p99),
        us(l.max),
        l.count
    )
}

/// The report's lateness line and warnings, for people.
pub fn render(out: &mut String, schedule: Option<&ScheduleReport>, warnings: &[String]) {
    if let Some(s) = schedule {
        let _ = writeln!(
            out,
            "schedule        sends left late by {}",
            lateness_words(&s.lateness_us, "  ")
        );
    }
    for w in warnings {
        let _ = writeln!(out, "WARNING         {w}");
    }
}

/// The same for the HTML page: the warnings first (`id="warnings"`, one
/// `class="warning"` each), then the lateness (`id="schedule"`).
pub fn render_html(out: &mut String, schedule: Option<&ScheduleReport>, warnings: &[String]) {
    if !warnings.is_empty() {
        out.push_str("<div id=\"warnings\">");
        for w in warnings {
            let _ = write!(out, "<p class=\"warning\">WARNING: {}</p>", escape(w));
        }
        out.push_str("</div>");
    }
    if let Some(s) = schedule {
        let _ = write!(
            out,
            "<p id=\"schedule\">Schedule: sends left late by {}.</p>",
            escape(&lateness_words(&s.lateness_us, " · "))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::{new_histogram, record_us};
    use crate::report::latency;

    fn stage(requested: f64, achieved: f64) -> StageReport {
        StageReport {
            duration_s: 3.0,
            rate_requested: requested,
            rate_from: requested,
            rate_to: requested,
            rate_achieved: achieved,
            ops: 0,
            latency_us: latency(&new_histogram()),
        }
    }

    #[test]
    fn lateness_is_reported_in_open_loop_only() {
        let mut h = new_histogram();
        for us in [3, 5, 8, 40] {
            record_us(&mut h, us);
        }
        assert!(report(false, &h).is_none());
        let l = report(true, &h).unwrap().lateness_us;
        assert_eq!((l.p50, l.p99, l.max, l.count), (5, 40, 40, 4));
    }

    #[test]
    fn text_and_html_show_the_lateness_in_units_and_every_warning() {
        let mut h = new_histogram();
        for us in [3, 5, 1_200] {
            record_us(&mut h, us);
        }
        let s = report(true, &h);
        let warnings = ["stage 2 sent 871 ops/s of 1250 requested: <all> busy".to_owned()];
        let mut text = String::new();
        render(&mut text, s.as_ref(), &warnings);
        assert!(
            text.contains("p50 5 µs  p99 1.20 ms  max 1.20 ms (3 scheduled sends)"),
            "{text}"
        );
        assert!(text.contains("WARNING         stage 2 sent 871"), "{text}");
        let mut html = String::new();
        render_html(&mut html, s.as_ref(), &warnings);
        assert!(html.contains("<div id=\"warnings\"><p class=\"warning\">WARNING: stage 2 sent 871 ops/s of 1250 requested: &lt;all&gt; busy</p></div>"), "{html}");
        assert!(html.contains("<p id=\"schedule\">Schedule: sends left late by p50 5 µs · p99 1.20 ms · max 1.20 ms (3 scheduled sends).</p>"), "{html}");
        let mut closed = String::new();
        render_html(&mut closed, None, &[]);
        assert!(closed.is_empty(), "{closed}");
    }

    #[test]
    fn warns_when_late_or_behind() {
        let mut h = new_histogram();
        for us in 0..100 {
            record_us(&mut h, us);
        }
        let stages = [stage(500.0, 499.0), stage(1250.0, 871.0)];
        fn k<'a>(h: &'a Histogram<u64>, stages: &'a [StageReport]) -> Kept<'a> {
            Kept {
                lateness: h,
                workers: 64,
                rate: None,
                stages: Some(stages),
            }
        }
        assert_eq!(
            warnings(&k(&h, &stages)),
            ["stage 2 sent 871 ops/s of 1250 requested: all 64 workers busy: add --streams"]
        );
        record_us(&mut h, 5_000);
        record_us(&mut h, 5_000);
        let w = warnings(&Kept {
            stages: None,
            ..k(&h, &stages)
        });
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("scheduled sends left late (lateness p99 5.00 ms, max 5.00 ms, over 1.00 ms)"),
            "{w:?}"
        );
        // --rate: 102 sends over 1 s against 100/s is on time; against 200/s behind.
        let on_time = Kept {
            lateness: &new_histogram(),
            workers: 8,
            rate: Some((100.0, Some(Duration::from_secs(1)))),
            stages: None,
        };
        assert!(warnings(&on_time).len() == 1, "no sends at all is behind");
        let mut sends = new_histogram();
        for _ in 0..102 {
            record_us(&mut sends, 10);
        }
        let rate = |r| Kept {
            lateness: &sends,
            workers: 8,
            rate: Some((r, Some(Duration::from_secs(1)))),
            stages: None,
        };
        assert!(warnings(&rate(100.0)).is_empty());
        assert_eq!(warnings(&rate(200.0)).len(), 1);
    }
}
