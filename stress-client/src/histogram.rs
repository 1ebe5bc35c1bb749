//! The latency histograms every part of the client shares: one precision and
//! one way to record (growing the histogram rather than clamping). A leaf:
//! it imports nothing of the crate, so the recorder, the per-RPC and stage
//! tallies and the timeline can all use it without importing each other.

use hdrhistogram::Histogram;

/// Significant figures of every latency histogram.
pub const HISTOGRAM_SIGFIGS: u8 = 3;

/// A fresh latency histogram (microseconds, auto-resizing).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new(HISTOGRAM_SIGFIGS).expect("3 significant figures is a valid histogram")
}

/// Records `value_us`, growing the histogram as needed. (`saturating_record`
/// alone would clamp to the current, small, range of an auto-resizing histogram.)
pub fn record_us(h: &mut Histogram<u64>, value_us: u64) {
    if h.record(value_us).is_err() {
        h.saturating_record(value_us);
    }
}
