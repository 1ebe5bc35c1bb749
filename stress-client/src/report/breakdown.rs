//! The report's tables for people: calls per RPC with their percentiles,
//! errors grouped by status code and message, the requested and achieved
//! rate, and one line per `--stages` stage.

use std::fmt::Write as _;

use super::units::{duration, us};
use super::{Latency, Summary};
use crate::rpc::Rpc;

/// Error groups printed; the rest are summed on one line.
pub const ERROR_GROUPS_SHOWN: usize = 10;

/// The per-RPC table (kinds never called are skipped).
pub fn per_rpc(out: &mut String, s: &Summary) {
    let _ = writeln!(
        out,
        "per RPC             {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "calls", "p50", "p90", "p99", "p99.9", "p99.99", "max"
    );
    for rpc in Rpc::ALL {
        let Some(r) = s.per_rpc.get(rpc.key()).filter(|r| r.count > 0) else {
            continue;
        };
        let l = &r.latency_us;
        let _ = writeln!(
            out,
            "  {:<17} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            rpc.label(),
            r.count,
            us(l.p50),
            us(l.p90),
            us(l.p99),
            us(l.p999),
            us(l.p9999),
            us(l.max)
        );
    }
}

/// Errors by code and message, most frequent first.
pub fn errors(out: &mut String, s: &Summary) {
    if s.errors.is_empty() {
        return;
    }
    let _ = writeln!(out, "errors by status and message:");
    for g in s.errors.iter().take(ERROR_GROUPS_SHOWN) {
        let _ = writeln!(out, "  {:>8} x {} {:?}", g.count, g.code, g.message);
    }
    let rest: u64 = s.errors.iter().skip(ERROR_GROUPS_SHOWN).map(|g| g.count).sum();
    if rest > 0 {
        let _ = writeln!(
            out,
            "  {rest:>8} x in {} more groups",
            s.errors.len() - ERROR_GROUPS_SHOWN
        );
    }
}

/// The requested rate beside the achieved one, and each stage.
pub fn rate_and_stages(out: &mut String, s: &Summary) {
    if let Some(r) = &s.rate {
        let share = if r.requested > 0.0 {
            100.0 * r.achieved / r.requested
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "rate            requested {:.1} ops/s, achieved {:.1} ops/s ({share:.1}%)",
            r.requested, r.achieved
        );
    }
    let Some(stages) = &s.stages else { return };
    let _ = writeln!(
        out,
        "stages          {:>8} {:>15} {:>10} {:>9} {:>10} {:>10} {:>10}",
        "length", "requested/s", "sent/s", "ops", "p50", "p99", "max"
    );
    for (i, st) in stages.iter().enumerate() {
        let requested = if st.rate_from == st.rate_to {
            format!("{:.0}", st.rate_from)
        } else {
            format!("{:.0}..{:.0}", st.rate_from, st.rate_to)
        };
        let _ = writeln!(
            out,
            "  {:>2}            {:>7.1}s {requested:>15} {:>10.1} {:>9} {:>10} {:>10} {:>10}",
            i + 1,
            st.duration_s,
            st.rate_achieved,
            st.ops,
            us(st.latency_us.p50),
            us(st.latency_us.p99),
            us(st.latency_us.max)
        );
    }
}

/// min / mean / stddev of a latency, for the line under its percentiles.
pub fn spread(l: &Latency) -> String {
    format!(
        "min {}  mean {}  stddev {}",
        us(l.min),
        duration(l.mean),
        duration(l.stddev)
    )
}
