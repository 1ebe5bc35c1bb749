//! What each `--stages` stage got, per worker: ops sent in it (its achieved
//! rate) and the latency of those sent after warmup. Stage boundaries are
//! fixed when the run starts; finding an op's stage is a binary search over
//! them, so recording allocates nothing.

use hdrhistogram::Histogram;

use crate::histogram::record_us;
use crate::rpc::new_breakdown_histogram;

/// Per-stage counts and latencies of one worker (or, merged, of the run).
#[derive(Debug, Clone)]
pub struct StageTally {
    /// Where each stage ends, ns on the run clock.
    ends_ns: Vec<u64>,
    pub sent: Vec<u64>,
    pub latency: Vec<Histogram<u64>>,
}

impl StageTally {
    /// A tally for stages ending at `ends_ns` (ascending).
    pub fn new(ends_ns: Vec<u64>) -> Self {
        let n = ends_ns.len();
        StageTally {
            ends_ns,
            sent: vec![0; n],
            latency: (0..n).map(|_| new_breakdown_histogram()).collect(),
        }
    }

    /// The stage an op sent at `sent_ns` belongs to (the last one for late sends).
    fn stage_of(&self, sent_ns: u64) -> usize {
        let i = self.ends_ns.partition_point(|end| *end <= sent_ns);
        i.min(self.ends_ns.len().saturating_sub(1))
    }

    /// Counts an op sent at `sent_ns`, with its latency if it was measured.
    pub fn record(&mut self, sent_ns: u64, latency_us: Option<u64>) {
        if self.ends_ns.is_empty() {
            return;
        }
        let i = self.stage_of(sent_ns);
        self.sent[i] += 1;
        if let Some(us) = latency_us {
            record_us(&mut self.latency[i], us);
        }
    }

    /// Adds another worker's tally of the same stages.
    pub fn add(&mut self, other: &StageTally) {
        for (i, (sent, h)) in other
            .sent
            .iter()
            .zip(&other.latency)
            .enumerate()
            .take(self.sent.len())
        {
            self.sent[i] += sent;
            // Auto-resizing histograms of equal precision always add.
            let _ = self.latency[i].add(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_land_in_the_stage_they_were_sent_in() {
        let mut t = StageTally::new(vec![1_000, 3_000]);
        t.record(0, Some(5));
        t.record(999, None);
        t.record(1_000, Some(50));
        t.record(9_999, Some(70));
        let mut total = StageTally::new(vec![1_000, 3_000]);
        total.add(&t);
        total.add(&t);
        assert_eq!(total.sent, vec![4, 4]);
        assert_eq!(total.latency[0].len(), 2);
        assert_eq!(total.latency[1].max(), total.latency[1].highest_equivalent(70));
    }
}
