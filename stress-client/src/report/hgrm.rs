//! The `.hgrm` percentile distribution, in the text layout of HdrHistogram's
//! `outputPercentileDistribution` (values in milliseconds), so HdrHistogram's
//! plotter and other tools read it as they read wrk2's or Java's output.
//! The footer also says which latency the file holds and in what unit.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// Quantile steps per half-distance to 100%, as HdrHistogram's default.
const TICKS_PER_HALF_DISTANCE: u32 = 5;
/// Recorded values are microseconds; the file shows milliseconds.
const VALUE_SCALE: f64 = 1000.0;
/// Sub-buckets of a 3-significant-figure histogram, as the footer reports them.
const SUB_BUCKETS: u32 = 2048;

/// Renders `h` (microsecond values) as `.hgrm` text; `what` names the latency.
pub fn render(h: &Histogram<u64>, what: &str) -> String {
    let mut out = String::from("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
    rows(&mut out, h);
    footer(&mut out, h);
    let _ = writeln!(out, "#[Latency = {what}; Value in milliseconds]");
    out
}

/// One row per quantile step; the last (100%) row has no 1/(1-p) column.
fn rows(out: &mut String, h: &Histogram<u64>) {
    if h.is_empty() {
        return;
    }
    let mut total = 0u64;
    for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        total += v.count_since_last_iteration();
        let value = v.value_iterated_to() as f64 / VALUE_SCALE;
        let quantile = v.quantile_iterated_to();
        if quantile < 1.0 {
            let _ = writeln!(
                out,
                "{value:12.3} {quantile:2.12} {total:10} {:14.2}",
                1.0 / (1.0 - quantile)
            );
        } else {
            let _ = writeln!(out, "{value:12.3} {quantile:2.12} {total:10}");
        }
    }
}

fn footer(out: &mut String, h: &Histogram<u64>) {
    let (mean, stdev, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (h.mean(), h.stdev(), h.max() as f64)
    };
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        mean / VALUE_SCALE,
        stdev / VALUE_SCALE
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        max / VALUE_SCALE,
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        SUB_BUCKETS
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_header_rows_and_footer() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let text = render(&h, "corrected latency");
        assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
        let last_row = text
            .lines()
            .rfind(|l| !l.starts_with('#') && !l.is_empty())
            .unwrap();
        let cols: Vec<&str> = last_row.split_whitespace().collect();
        assert_eq!(cols.len(), 3, "{last_row}");
        assert_eq!(cols[1], "1.000000000000");
        assert_eq!(cols[2], "10000");
        assert!(text.contains("Total count    =        10000]"));
        assert!(text.ends_with("#[Latency = corrected latency; Value in milliseconds]\n"));
        // The median row sits near 5 ms (5000 us).
        let median = text.lines().find(|l| l.contains(" 0.500000000000 ")).unwrap();
        assert!(median.trim_start().starts_with("5.0"), "{median}");
    }
}
