//! The `process_*` metrics (Linux): the prometheus crate's process collector
//! (memory, file descriptors, threads, start time), with
//! `process_cpu_seconds_total` to the microsecond from `getrusage` instead of
//! the whole seconds that collector reports (a server that had used 0.9 s of
//! CPU showed 0, and rates over a scrape interval came out as steps).

use prometheus::core::{Collector, Desc};
use prometheus::process_collector::ProcessCollector;
use prometheus::proto::{Counter, MetricFamily};

/// The metric this collector makes precise.
pub const CPU_SECONDS_TOTAL: &str = "process_cpu_seconds_total";

/// The process collector of this process, CPU time to the microsecond.
#[derive(Debug)]
pub struct PreciseProcess(ProcessCollector);

impl PreciseProcess {
    /// Collects the metrics of the calling process.
    pub fn for_self() -> Self {
        PreciseProcess(ProcessCollector::for_self())
    }
}

impl Collector for PreciseProcess {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut families = self.0.collect();
        let Some(seconds) = cpu_seconds() else {
            return families;
        };
        let cpu = families.iter_mut().filter(|f| f.name() == CPU_SECONDS_TOTAL);
        for metric in cpu.flat_map(|f| f.mut_metric().iter_mut()) {
            let mut counter = Counter::default();
            counter.set_value(seconds);
            metric.set_counter(counter);
        }
        families
    }
}

/// User plus system CPU time of this process so far, in seconds, to the
/// microsecond (`getrusage(RUSAGE_SELF)`); none if the call fails.
pub fn cpu_seconds() -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the rusage it is pointed at, which is zeroed
    // (a valid rusage) already, and keeps no pointer to it.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: zeroed, then written by getrusage: initialised either way.
    let usage = unsafe { usage.assume_init() };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_seconds_are_reported_below_a_whole_second() {
        // Burn a little CPU so that the value is above zero but (on any
        // machine that runs this test) well below what was once rounded down.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let families = PreciseProcess::for_self().collect();
        let cpu = families.iter().find(|f| f.name() == CPU_SECONDS_TOTAL);
        let value = cpu.expect("process_cpu_seconds_total").get_metric()[0]
            .get_counter()
            .get_value();
        assert!(value > 0.0, "{value}");
        assert!(value.fract() != 0.0, "whole seconds: {value}");
    }
}
