//! HdrHistogram V2 interval logs: `--histogram-log` writes one histogram per
//! second of the run (microseconds), and `stress-client merge` adds up logs
//! from any number of runs or machines and prints the combined percentiles.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogIterator, IntervalLogWriterBuilder, LogEntry};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use crate::histogram::new_histogram;

/// What a reader of the log needs to know about its unit.
pub const UNIT_COMMENT: &str = "HistogramLogProcessor assumes nanoseconds: \
     pass -outputValueUnitRatio 1000 to print these microseconds as milliseconds";

/// Writes the per-interval histograms (index → histogram) to `path`.
pub fn write(
    path: &Path,
    intervals: &BTreeMap<u64, Histogram<u64>>,
    interval: Duration,
    start: SystemTime,
) -> Result<(), String> {
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    {
        let mut writer = IntervalLogWriterBuilder::new()
            .add_comment("stress-client corrected latency log; values in microseconds")
            .add_comment(UNIT_COMMENT)
            .with_start_time(start)
            .with_base_time(start)
            .begin_log_with(&mut out, &mut serializer)
            .map_err(|e| format!("cannot start histogram log: {e}"))?;
        for (index, h) in intervals {
            let at = interval.saturating_mul(u32::try_from(*index).unwrap_or(u32::MAX));
            writer
                .write_histogram(h, at, interval, None)
                .map_err(|e| format!("cannot write histogram log: {e:?}"))?;
        }
    }
    std::fs::write(path, out).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Adds every interval histogram of every log in `paths` into one histogram.
pub fn merge(paths: &[impl AsRef<Path>]) -> Result<(Histogram<u64>, usize), String> {
    let mut total = new_histogram();
    let mut intervals = 0;
    let mut deserializer = Deserializer::new();
    for path in paths {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        for entry in IntervalLogIterator::new(&bytes) {
            let entry = entry.map_err(|e| format!("{}: not an interval log ({e:?})", path.display()))?;
            let LogEntry::Interval(interval) = entry else {
                continue;
            };
            let h: Histogram<u64> = decode(&mut deserializer, interval.encoded_histogram())
                .map_err(|e| format!("{}: bad histogram: {e}", path.display()))?;
            total
                .add(&h)
                .map_err(|e| format!("{}: cannot add histogram: {e:?}", path.display()))?;
            intervals += 1;
        }
    }
    Ok((total, intervals))
}

fn decode(deserializer: &mut Deserializer, base64_text: &str) -> Result<Histogram<u64>, String> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(base64_text)
        .map_err(|e| e.to_string())?;
    deserializer
        .deserialize(&mut raw.as_slice())
        .map_err(|e| format!("{e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_logs_merge_back_to_the_same_counts() {
        let dir = tempfile::tempdir().unwrap();
        let mut intervals = BTreeMap::new();
        for (i, base) in [(0u64, 100u64), (1, 1000), (3, 5000)] {
            let mut h = new_histogram();
            for v in 0..100 {
                h.record(base + v).unwrap();
            }
            intervals.insert(i, h);
        }
        let a = dir.path().join("a.hlog");
        let b = dir.path().join("b.hlog");
        write(&a, &intervals, Duration::from_secs(1), SystemTime::now()).unwrap();
        write(&b, &intervals, Duration::from_secs(1), SystemTime::now()).unwrap();
        let text = std::fs::read_to_string(&a).unwrap();
        assert!(text.contains("values in microseconds") && text.contains("-outputValueUnitRatio 1000"));
        let (merged, n) = merge(&[&a, &b]).unwrap();
        assert_eq!(n, 6);
        assert_eq!(merged.len(), 600);
        assert_eq!(merged.max(), merged.highest_equivalent(5099));
        assert!(merge(&[dir.path().join("missing")]).is_err());
    }
}
