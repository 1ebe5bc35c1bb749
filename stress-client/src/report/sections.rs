//! The report's newer sections, built from the merged recorders: the per-RPC
//! breakdown, the requested and achieved rate, and one entry per `--stages`
//! stage. (Serialised into the `--json` report under `per_rpc`, `rate` and
//! `stages`.)

use std::collections::BTreeMap;

use serde::Serialize;

use super::{latency, Latency, Shape};
use crate::rpc::{PerRpc, Rpc};
use crate::stage_tally::StageTally;
use crate::stages::Plan;

/// One kind of call (`per_rpc.<key>`).
#[derive(Debug, Clone, Serialize)]
pub struct RpcReport {
    /// Calls made, warmup included.
    pub count: u64,
    /// Latency of the calls sent after warmup (`latency_us.count` of them).
    pub latency_us: Latency,
}

/// The rate asked for and the one achieved (`rate`).
#[derive(Debug, Clone, Serialize)]
pub struct RateReport {
    /// Ops/s asked for (the mean over the stages under `--stages`).
    pub requested: f64,
    /// Ops/s completed in the measured window (the throughput).
    pub achieved: f64,
}

/// One stage of `--stages` (`stages[]`).
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub duration_s: f64,
    /// The stage's mean requested rate (a ramp's is halfway).
    pub rate_requested: f64,
    pub rate_from: f64,
    pub rate_to: f64,
    /// Ops sent in the stage per second of it.
    pub rate_achieved: f64,
    /// Ops sent in the stage.
    pub ops: u64,
    /// Latency of those sent after warmup.
    pub latency_us: Latency,
}

/// The breakdown keyed by `Rpc::key`, every kind (zero when never called).
pub fn per_rpc(p: &PerRpc) -> BTreeMap<String, RpcReport> {
    Rpc::ALL
        .iter()
        .map(|rpc| {
            let report = RpcReport {
                count: p.calls[*rpc as usize],
                latency_us: latency(&p.latency[*rpc as usize]),
            };
            (rpc.key().to_owned(), report)
        })
        .collect()
}

/// Under `--rate` or `--stages`, the requested rate beside the achieved one.
pub fn rate(shape: Shape<'_>, achieved: f64) -> Option<RateReport> {
    let requested = match (shape.rate, shape.stages) {
        (Some(rate), _) => rate,
        (None, Some(plan)) => {
            let ops: f64 = plan.stages.iter().map(|s| s.ops()).sum();
            ops / plan.total().as_secs_f64().max(f64::MIN_POSITIVE)
        }
        (None, None) => return None,
    };
    Some(RateReport { requested, achieved })
}

/// One report per stage, when the run had stages.
pub fn stages(plan: Option<&Plan>, tally: Option<&StageTally>) -> Option<Vec<StageReport>> {
    let (plan, tally) = (plan?, tally?);
    let reports = plan
        .stages
        .iter()
        .zip(tally.sent.iter().zip(&tally.latency))
        .map(|(stage, (sent, h))| {
            let secs = stage.duration.as_secs_f64();
            StageReport {
                duration_s: secs,
                rate_requested: stage.mean_rate(),
                rate_from: stage.from,
                rate_to: stage.to,
                rate_achieved: *sent as f64 / secs,
                ops: *sent,
                latency_us: latency(h),
            }
        })
        .collect();
    Some(reports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::parse_stages;

    #[test]
    fn stage_reports_follow_the_plan_and_the_tally() {
        let plan = parse_stages("2s@10,1s@0..40").unwrap();
        let mut tally = StageTally::new(plan.ends_ns());
        for i in 0..20u64 {
            tally.record(i * 100_000_000, Some(100));
        }
        tally.record(2_500_000_000, Some(900));
        let reports = stages(Some(&plan), Some(&tally)).unwrap();
        assert_eq!(reports.len(), 2);
        assert_eq!((reports[0].ops, reports[0].rate_achieved), (20, 10.0));
        assert_eq!((reports[1].rate_requested, reports[1].rate_to), (20.0, 40.0));
        assert!(
            reports[1].latency_us.max.abs_diff(900) <= 9,
            "{:?}",
            reports[1].latency_us
        );
        let r = rate(
            Shape {
                stages: Some(&plan),
                ..Shape::default()
            },
            9.0,
        )
        .unwrap();
        assert!((r.requested - 40.0 / 3.0).abs() < 1e-9);
        assert!(rate(Shape::default(), 9.0).is_none());
    }

    #[test]
    fn per_rpc_has_every_kind() {
        let mut p = PerRpc::default();
        p.record(Rpc::Transfer, Some(10));
        let map = per_rpc(&p);
        assert_eq!(map.len(), 5);
        assert_eq!(map["transfer"].latency_us.count, 1);
        assert_eq!(map["get_balance"].count, 0);
    }
}
