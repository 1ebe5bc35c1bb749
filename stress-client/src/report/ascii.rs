//! The latency histogram at a glance, as oha and ghz print it: log-spaced
//! buckets from the fastest to the slowest op (latency spans decades, so
//! linear buckets would put nearly everything in the first one), each with
//! its count and a bar.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use super::units;

/// Buckets of the printed histogram.
pub const BUCKETS: usize = 12;
/// Characters of the longest bar.
pub const BAR_WIDTH: usize = 40;

/// `n` log-spaced buckets over `h`'s range: (upper bound µs, count), the
/// last bound being the max. Empty for an empty histogram.
pub fn buckets(h: &Histogram<u64>, n: usize) -> Vec<(u64, u64)> {
    if h.is_empty() || n == 0 {
        return Vec::new();
    }
    let (lo, hi) = (h.min().max(1) as f64, h.max().max(1) as f64);
    let ratio = (hi / lo).powf(1.0 / n as f64);
    let mut bounds: Vec<u64> = (1..=n)
        .map(|i| (lo * ratio.powi(i as i32)).round() as u64)
        .collect();
    bounds.dedup();
    if let Some(last) = bounds.last_mut() {
        *last = (*last).max(h.max());
    }
    let mut counts = vec![0u64; bounds.len()];
    for v in h.iter_recorded() {
        let value = h.highest_equivalent(v.value_iterated_to()).min(h.max());
        let i = bounds.partition_point(|b| *b < value).min(bounds.len() - 1);
        counts[i] += v.count_at_value();
    }
    bounds.into_iter().zip(counts).collect()
}

/// The buckets as text lines: `  <=  1.23 ms [   567] |■■■■`.
pub fn render(buckets: &[(u64, u64)]) -> String {
    let mut out = String::new();
    let most = buckets.iter().map(|b| b.1).max().unwrap_or(0).max(1);
    let labels: Vec<String> = buckets.iter().map(|b| units::us(b.0)).collect();
    let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1);
    let count_width = most.to_string().len();
    for ((_, count), bound) in buckets.iter().zip(labels) {
        let bar = usize::try_from(count.saturating_mul(BAR_WIDTH as u64) / most).unwrap_or(BAR_WIDTH);
        let _ = writeln!(
            out,
            "  <= {bound:>width$} [{count:>count_width$}] |{}",
            "■".repeat(bar)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::new_histogram;

    #[test]
    fn buckets_cover_every_sample_and_end_at_the_max() {
        let mut h = new_histogram();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let b = buckets(&h, BUCKETS);
        assert_eq!(b.iter().map(|x| x.1).sum::<u64>(), 10_000);
        assert_eq!(b.last().unwrap().0, h.max());
        assert!(b.windows(2).all(|w| w[0].0 < w[1].0));
        // Log spacing: the last bucket (a decade's worth of values near 10 ms) is the fullest.
        assert_eq!(b.iter().map(|x| x.1).max(), Some(b.last().unwrap().1));
        assert!(buckets(&new_histogram(), BUCKETS).is_empty());
    }

    #[test]
    fn bars_scale_to_the_fullest_bucket() {
        let text = render(&[(10, 5), (100, 10), (1000, 0)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1].matches('■').count(), BAR_WIDTH);
        assert_eq!(lines[0].matches('■').count(), BAR_WIDTH / 2);
        assert!(lines[2].ends_with('|'), "{}", lines[2]);
        assert!(lines[0].contains("<=   10 µs [ 5]"), "{}", lines[0]);
        assert!(lines[2].contains("<= 1.00 ms [ 0]"), "{}", lines[2]);
    }
}
