//! Inline SVG charts for the HTML report, drawn in Rust so the page needs
//! no script library: a line chart (several series over shared axes, with
//! optional fixed x ticks for the percentile spectrum's log axis) and a
//! horizontal bar chart. Every series path carries `data-points` (how many
//! points it draws) so a browser check can tell a chart holds data. A y axis
//! of latencies (µs) is labelled in µs, ms or s, the unit on every tick.

use std::fmt::Write as _;

use super::units::{self, Unit};

/// Chart size in SVG user units, and the margins around the plot area.
const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 280.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 46.0;
/// Gridlines (and labels) on the y axis, and on x without fixed ticks.
const Y_TICKS: usize = 5;
const X_TICKS: usize = 6;
/// Series with at most this many points also get a dot per point.
const DOTS_MAX: usize = 120;
/// Width of one legend entry.
const LEGEND_STEP: f64 = 110.0;
/// Bar chart geometry.
const BAR_HEIGHT: f64 = 22.0;
const BAR_LABEL: f64 = 190.0;

/// One line of a chart.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// A line chart.
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: Vec<Series<'a>>,
    /// Fixed x ticks (value, label); evenly spaced numbers when `None`.
    pub x_ticks: Option<Vec<(f64, String)>>,
    /// The x range; the data's when `None`.
    pub x_range: Option<(f64, f64)>,
    /// The y values are durations in µs: ticks and tooltips carry a unit.
    pub y_durations: bool,
}

/// Escapes text for HTML and SVG.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// The data range of all series: (x0, x1, y1); y starts at 0 and ends on a
/// round tick.
fn bounds(series: &[Series<'_>], x_range: Option<(f64, f64)>) -> (f64, f64, f64) {
    let all = || series.iter().flat_map(|s| s.points.iter());
    let x0 = all().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let x1 = all().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let y1 = all().map(|p| p.1).fold(0.0, f64::max);
    let (x0, x1) = x_range.unwrap_or((x0, x1));
    let (x0, x1) = if x0.is_finite() && x1 > x0 {
        (x0, x1)
    } else {
        (0.0, 1.0)
    };
    let y1 = if y1 > 0.0 { y1 } else { 1.0 };
    let step = nice_step(y1, Y_TICKS);
    (x0, x1, (y1 / step).ceil() * step)
}

/// A round step (1, 2 or 5 × 10^k) that cuts `range` into at most `ticks` parts.
pub fn nice_step(range: f64, ticks: usize) -> f64 {
    let raw = range / ticks.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// Round ticks from `from` to `to`.
fn ticks(from: f64, to: f64, count: usize) -> Vec<(f64, String)> {
    let step = nice_step(to - from, count);
    let first = (from / step).ceil() as i64;
    let last = (to / step).floor() as i64;
    // As many decimals as the step has: 2, 4, 6 or 1.5, 2.0, 2.5 (not 2.00).
    let decimals = usize::try_from(-(step.log10().floor() as i64)).unwrap_or(0);
    let label = |v: f64| {
        if v.abs() < 1e3 {
            format!("{v:.decimals$}")
        } else {
            number(v)
        }
    };
    (first..=last)
        .map(|k| k as f64 * step)
        .map(|v| (v, label(v)))
        .collect()
}

/// Round ticks from 0 to `to_us` µs, labelled in the unit that suits the
/// axis's top (`500 µs`, `1.5 ms`, `2 s`): one unit along the axis.
fn duration_ticks(to_us: f64, count: usize) -> Vec<(f64, String)> {
    let unit = Unit::for_us(to_us);
    let scale = unit.scale();
    ticks(0.0, to_us / scale, count)
        .into_iter()
        .map(|(v, label)| (v * scale, format!("{label} {}", unit.symbol())))
        .collect()
}

/// Maps data coordinates to the plot area.
struct Frame {
    x0: f64,
    x1: f64,
    y1: f64,
    y_durations: bool,
}

impl Frame {
    fn x(&self, v: f64) -> f64 {
        LEFT + (v - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, v: f64) -> f64 {
        HEIGHT - BOTTOM - v / self.y1 * (HEIGHT - TOP - BOTTOM)
    }
}

/// A short label for an axis value.
pub fn number(v: f64) -> String {
    match v.abs() {
        a if a >= 1e6 => format!("{:.1}M", v / 1e6),
        a if a >= 1e4 => format!("{:.0}k", v / 1e3),
        a if a >= 1e3 => format!("{:.1}k", v / 1e3),
        a if a >= 10.0 || a == 0.0 => format!("{v:.0}"),
        _ => format!("{v:.2}"),
    }
}

/// Renders a line chart as an `<svg>` element.
pub fn line_chart(c: &LineChart<'_>) -> String {
    let (x0, x1, y1) = bounds(&c.series, c.x_range);
    let f = Frame {
        x0,
        x1,
        y1,
        y_durations: c.y_durations,
    };
    let mut out = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{0}\">\
         <text class=\"title\" x=\"{LEFT}\" y=\"20\">{0}</text>",
        escape(c.title)
    );
    grid(&mut out, &f, c);
    for s in &c.series {
        series(&mut out, &f, s);
    }
    legend(&mut out, &c.series);
    out.push_str("</svg>");
    out
}

fn grid(out: &mut String, f: &Frame, c: &LineChart<'_>) {
    let (bottom, right) = (HEIGHT - BOTTOM, WIDTH - RIGHT);
    let y_ticks = if f.y_durations {
        duration_ticks(f.y1, Y_TICKS)
    } else {
        ticks(0.0, f.y1, Y_TICKS)
    };
    for (v, label) in y_ticks {
        let y = f.y(v);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\"/>\
             <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y + 4.0,
            label
        );
    }
    let x_ticks = c.x_ticks.clone().unwrap_or_else(|| ticks(f.x0, f.x1, X_TICKS));
    for (v, label) in x_ticks.iter().filter(|t| t.0 >= f.x0 && t.0 <= f.x1) {
        let x = f.x(*v);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{bottom}\"/>\
             <text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            bottom + 16.0,
            escape(label)
        );
    }
    let _ = write!(
        out,
        "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
         <text class=\"axis\" x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">{}</text>",
        (LEFT + right) / 2.0,
        HEIGHT - 8.0,
        escape(c.x_label),
        (TOP + bottom) / 2.0,
        (TOP + bottom) / 2.0,
        escape(c.y_label)
    );
}

fn series(out: &mut String, f: &Frame, s: &Series<'_>) {
    if s.points.is_empty() {
        return;
    }
    let mut d = String::new();
    for (i, (x, y)) in s.points.iter().enumerate() {
        let _ = write!(
            d,
            "{}{:.1} {:.1}",
            if i == 0 { "M" } else { " L" },
            f.x(*x),
            f.y(*y)
        );
    }
    let _ = write!(
        out,
        "<path class=\"series\" data-series=\"{}\" data-points=\"{}\" d=\"{d}\" stroke=\"{}\"/>",
        escape(s.name),
        s.points.len(),
        s.color
    );
    if s.points.len() <= DOTS_MAX {
        for (x, y) in &s.points {
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{}\"><title>{}: {} at {}</title></circle>",
                f.x(*x),
                f.y(*y),
                s.color,
                escape(s.name),
                if f.y_durations { units::duration(*y) } else { number(*y) },
                number(*x)
            );
        }
    }
}

/// One entry per series that has points.
fn legend(out: &mut String, series: &[Series<'_>]) {
    let shown = series.iter().filter(|s| !s.points.is_empty());
    let mut x = WIDTH - RIGHT - LEGEND_STEP * shown.clone().count() as f64;
    for s in shown {
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"10\" width=\"12\" height=\"12\" fill=\"{}\"/>\
             <text class=\"legend\" x=\"{:.1}\" y=\"20\">{}</text>",
            s.color,
            x + 16.0,
            escape(s.name)
        );
        x += LEGEND_STEP;
    }
}

/// Renders labelled horizontal bars (label, value, color) as an `<svg>`.
pub fn bar_chart(title: &str, bars: &[(String, u64, &str)]) -> String {
    let height = TOP + BAR_HEIGHT * bars.len() as f64 + 10.0;
    let most = bars.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
    let span = WIDTH - BAR_LABEL - RIGHT - 80.0;
    let mut out = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"{0}\">\
         <text class=\"title\" x=\"10\" y=\"20\">{0}</text>",
        escape(title)
    );
    for (i, (label, value, color)) in bars.iter().enumerate() {
        let y = TOP + BAR_HEIGHT * i as f64;
        let w = (*value as f64 / most * span).max(if *value > 0 { 1.0 } else { 0.0 });
        let _ = write!(
            out,
            "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect class=\"bar\" data-value=\"{value}\" x=\"{BAR_LABEL}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{color}\"/>\
             <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\">{value}</text>",
            BAR_LABEL - 8.0,
            y + 15.0,
            escape(label),
            BAR_HEIGHT - 6.0,
            BAR_LABEL + w + 6.0,
            y + 15.0
        );
    }
    out.push_str("</svg>");
    out
}

/// A stretch of a line chart's x axis drawn shaded behind its lines (the
/// timeline's warmup and drain seconds), with its phase as the class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band<'a> {
    pub from: f64,
    pub to: f64,
    pub phase: &'a str,
}

/// Colour of a shaded band (light grey: it must not read as data).
const BAND_FILL: &str = "#e5e7eb";

/// `chart`, drawn by [`line_chart`] over `x_range`, with `bands` shaded
/// behind everything but the title. (Kept apart from `line_chart`: charts
/// without phases do not change.)
pub fn with_bands(chart: String, x_range: (f64, f64), bands: &[Band<'_>]) -> String {
    let (x0, x1) = if x_range.0.is_finite() && x_range.1 > x_range.0 {
        x_range
    } else {
        (0.0, 1.0)
    };
    let f = Frame {
        x0,
        x1,
        y1: 1.0,
        y_durations: false,
    };
    let mut rects = String::new();
    for b in bands {
        let (from, to) = (b.from.max(x0), b.to.min(x1));
        if to <= from {
            continue;
        }
        let _ = write!(
            rects,
            "<rect class=\"phase\" data-phase=\"{}\" x=\"{:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{BAND_FILL}\"><title>{}</title></rect>",
            escape(b.phase),
            f.x(from),
            f.x(to) - f.x(from),
            HEIGHT - TOP - BOTTOM,
            escape(b.phase)
        );
    }
    // After the title, before the grid: the lines stay on top.
    match chart.find("</text>") {
        Some(i) => {
            let at = i + "</text>".len();
            format!("{}{rects}{}", &chart[..at], &chart[at..])
        }
        None => chart,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_chart_has_one_path_per_series_with_its_points() {
        let chart = LineChart {
            title: "t <&>",
            x_label: "s",
            y_label: "us",
            series: vec![
                Series {
                    name: "p50",
                    color: "#111",
                    points: vec![(1.0, 5.0), (2.0, 7.0), (3.0, 6.0)],
                },
                Series {
                    name: "empty",
                    color: "#222",
                    points: vec![],
                },
            ],
            x_ticks: None,
            x_range: None,
            y_durations: false,
        };
        let svg = line_chart(&chart);
        assert_eq!(svg.matches("<path").count(), 1);
        assert!(!svg.contains(">empty<"), "no legend for a series without points");
        assert!(svg.contains("data-points=\"3\""));
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("t &lt;&amp;&gt;") && !svg.contains("t <&>"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn bands_are_drawn_behind_the_lines_and_clipped() {
        let chart = line_chart(&LineChart {
            title: "t",
            x_label: "x",
            y_label: "y",
            series: vec![Series {
                name: "a",
                color: "#000",
                points: vec![(1.0, 1.0), (5.0, 2.0)],
            }],
            x_ticks: None,
            x_range: Some((1.0, 5.0)),
            y_durations: false,
        });
        let bands = [
            Band {
                from: 0.5,
                to: 1.5,
                phase: "warmup",
            },
            Band {
                from: 4.5,
                to: 5.5,
                phase: "drain",
            },
            Band {
                from: 9.0,
                to: 10.0,
                phase: "drain",
            },
        ];
        let svg = with_bands(chart, (1.0, 5.0), &bands);
        assert_eq!(
            svg.matches("<rect class=\"phase\"").count(),
            2,
            "the third is off the axis"
        );
        assert!(
            svg.contains("data-phase=\"warmup\" x=\"70.0\""),
            "clipped to the axis start: {svg}"
        );
        assert!(
            svg.find("class=\"phase\"") < svg.find("class=\"series\""),
            "behind the lines"
        );
    }

    #[test]
    fn bars_scale_to_the_largest() {
        let svg = bar_chart(
            "o",
            &[
                ("a".into(), 10, "#1"),
                ("b".into(), 5, "#2"),
                ("c".into(), 0, "#3"),
            ],
        );
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 3);
        assert!(svg.contains("data-value=\"5\""));
        assert!(svg.contains("width=\"0.0\""));
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_step(26_000.0, 5), 10_000.0);
        assert_eq!(nice_step(3.0, 6), 0.5);
        assert_eq!(nice_step(424.0, 5), 100.0);
        let t: Vec<f64> = ticks(1.0, 4.0, 6).into_iter().map(|t| t.0).collect();
        assert_eq!(t, [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]);
        let labels: Vec<String> = ticks(1.0, 10.0, 6).into_iter().map(|t| t.1).collect();
        assert_eq!(labels, ["2", "4", "6", "8", "10"]);
        let labels: Vec<String> = ticks(1.0, 2.0, 4).into_iter().map(|t| t.1).collect();
        assert_eq!(labels, ["1.0", "1.5", "2.0"]);
    }

    #[test]
    fn a_latency_axis_carries_its_unit() {
        let labels = |to_us| -> Vec<String> { duration_ticks(to_us, 5).into_iter().map(|t| t.1).collect() };
        assert_eq!(
            labels(500.0),
            ["0 µs", "100 µs", "200 µs", "300 µs", "400 µs", "500 µs"]
        );
        assert_eq!(
            labels(2500.0),
            ["0.0 ms", "0.5 ms", "1.0 ms", "1.5 ms", "2.0 ms", "2.5 ms"]
        );
        assert_eq!(labels(3e6), ["0 s", "1 s", "2 s", "3 s"]);
        let at: Vec<f64> = duration_ticks(2500.0, 5).into_iter().map(|t| t.0).collect();
        assert_eq!(at[1], 500.0, "positions stay in µs");
        let chart = LineChart {
            title: "latency",
            x_label: "s",
            y_label: "latency",
            series: vec![Series {
                name: "p99",
                color: "#000",
                points: vec![(1.0, 800.0), (2.0, 2_400.0)],
            }],
            x_ticks: None,
            x_range: None,
            y_durations: true,
        };
        let svg = line_chart(&chart);
        assert!(svg.contains(">2.5 ms</text>"), "{svg}");
        assert!(svg.contains("p99: 2.40 ms at"), "{svg}");
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(1500.0), "1.5k");
        assert_eq!(number(25_000.0), "25k");
        assert_eq!(number(2_500_000.0), "2.5M");
        assert_eq!(number(0.5), "0.50");
    }
}
