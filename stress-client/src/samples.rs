//! The latencies of a worker's measured calls, kept as plain numbers while
//! the load runs and put into its histograms once, when the worker is done.
//! A push per call instead of three histogram updates: one worker's
//! histograms are tens of KiB, so with many workers every update missed the
//! cache, and as latencies climbed (a queue building up) every worker's
//! histograms kept reallocating — under P6's 2,000-stream flood that cost
//! the load generator about a quarter of a core, taken from the server it
//! measures.

use crate::histogram::record_us;
use crate::rpc::{PerRpc, Rpc};
use hdrhistogram::Histogram;

/// The largest latency a sample holds (µs, ≈ 71 minutes); longer ones are
/// kept as this.
pub const SAMPLE_MAX_US: u64 = u32::MAX as u64;

/// One worker's samples: 5 bytes per measured call in a closed loop, 9 in
/// an open one.
#[derive(Debug, Default)]
pub struct Samples {
    corrected_us: Vec<u32>,
    rpc: Vec<u8>,
    /// From each call's actual send; kept only once one differed from its
    /// corrected value (never in a closed loop, where calls go when due).
    uncorrected_us: Option<Vec<u32>>,
}

/// Where [`Samples::drain_into`] puts the latencies.
pub struct Histograms<'a> {
    pub corrected: &'a mut Histogram<u64>,
    pub uncorrected: &'a mut Option<Histogram<u64>>,
    pub per_rpc: &'a mut PerRpc,
}

fn clamp(us: u64) -> u32 {
    u32::try_from(us.min(SAMPLE_MAX_US)).unwrap_or(u32::MAX)
}

impl Samples {
    /// Keeps one measured call's latencies.
    pub fn push(&mut self, rpc: Rpc, corrected_us: u64, uncorrected_us: u64) {
        let (corrected, uncorrected) = (clamp(corrected_us), clamp(uncorrected_us));
        if self.uncorrected_us.is_none() && uncorrected != corrected {
            // Every earlier call had equal values: the copy is exact.
            self.uncorrected_us = Some(self.corrected_us.clone());
        }
        if let Some(u) = self.uncorrected_us.as_mut() {
            u.push(uncorrected);
        }
        self.corrected_us.push(corrected);
        self.rpc.push(rpc as u8);
    }

    /// Records every sample into `into` and forgets them.
    pub fn drain_into(&mut self, into: Histograms<'_>) {
        let samples = std::mem::take(self);
        for (&us, &rpc) in samples.corrected_us.iter().zip(&samples.rpc) {
            record_us(into.corrected, u64::from(us));
            into.per_rpc.record_latency(usize::from(rpc), u64::from(us));
        }
        if let Some(uncorrected) = samples.uncorrected_us {
            let h = into
                .uncorrected
                .get_or_insert_with(crate::histogram::new_histogram);
            for us in uncorrected {
                record_us(h, u64::from(us));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::new_histogram;

    /// What recording each call into its histograms at once would hold.
    #[test]
    fn drained_samples_equal_direct_recording_closed_or_open_loop() {
        let calls = [
            (Rpc::Withdraw, 100, 100),
            (Rpc::Deposit, 300, 300),
            (Rpc::Withdraw, 90, 90),
            (Rpc::Transfer, 900, 400),
            (Rpc::Withdraw, 50, 50),
            (Rpc::WithdrawStream, 80, 10),
            (Rpc::Withdraw, SAMPLE_MAX_US + 5, 7),
        ];
        for n in [3, calls.len()] {
            let (mut samples, mut direct) = (
                Samples::default(),
                (new_histogram(), new_histogram(), PerRpc::default()),
            );
            for &(rpc, c, u) in &calls[..n] {
                samples.push(rpc, c, u);
                record_us(&mut direct.0, c.min(SAMPLE_MAX_US));
                record_us(&mut direct.1, u);
                direct.2.record_latency(rpc as usize, c.min(SAMPLE_MAX_US));
            }
            let (mut corrected, mut uncorrected, mut per_rpc) = (new_histogram(), None, PerRpc::default());
            samples.drain_into(Histograms {
                corrected: &mut corrected,
                uncorrected: &mut uncorrected,
                per_rpc: &mut per_rpc,
            });
            assert_eq!(corrected, direct.0, "{n} calls");
            // Closed loop (the first 3 calls): no separate uncorrected histogram.
            assert_eq!(uncorrected.is_some(), n > 3);
            assert_eq!(*uncorrected.as_ref().unwrap_or(&corrected), direct.1, "{n} calls");
            assert_eq!(per_rpc.latency, direct.2.latency, "{n} calls");
            assert!(samples.corrected_us.is_empty(), "drained");
        }
    }
}
