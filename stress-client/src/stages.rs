//! `--stages D@RATE[,D@RATE...]`: an open-loop load in stages, as k6's.
//! `D@RATE` holds RATE ops/s for D (a step); `D@A..B` ramps linearly from A
//! to B ops/s over D. The plan answers the one question the schedule asks:
//! when is the n-th op of the whole run due? (The inverse of the cumulative
//! op count, which is linear in a step and quadratic in a ramp.)

use std::time::Duration;

use bank_server::cli::parse_duration;

/// Stages one plan may have.
pub const STAGES_MAX: usize = 100;
/// The highest rate a stage may ask for, in ops/s.
pub const STAGE_RATE_MAX: f64 = 1e9;
/// The longest plan, all stages together (far beyond any run, and well
/// inside what `Instant` arithmetic holds).
pub const STAGES_TOTAL_MAX: Duration = Duration::from_secs(30 * 24 * 3600);

/// One stage: `from` ops/s at its start to `to` ops/s at its end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub from: f64,
    pub to: f64,
}

/// The stages of a run, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub stages: Vec<Stage>,
}

impl Stage {
    /// Ops due in the whole stage.
    pub fn ops(&self) -> f64 {
        (self.from + self.to) / 2.0 * self.duration.as_secs_f64()
    }

    /// The mean requested rate, ops/s.
    pub fn mean_rate(&self) -> f64 {
        (self.from + self.to) / 2.0
    }

    /// Seconds into the stage at which `n` of its ops are due (n ≤ `ops()`).
    fn time_of(&self, n: f64) -> f64 {
        let d = self.duration.as_secs_f64();
        let slope = (self.to - self.from) / (2.0 * d);
        if slope.abs() < f64::EPSILON * self.from.max(1.0) {
            return if self.from > 0.0 { n / self.from } else { d };
        }
        // from·t + slope·t² = n
        let disc = (self.from * self.from + 4.0 * slope * n).max(0.0);
        ((-self.from + disc.sqrt()) / (2.0 * slope)).clamp(0.0, d)
    }
}

impl Plan {
    /// The length of the whole plan.
    pub fn total(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// When (from the start) op number `n` of the run (0-based, fractional
    /// for interleaved workers) is due; `None` past the last stage.
    pub fn due(&self, n: f64) -> Option<Duration> {
        let mut before = 0.0;
        let mut start = 0.0;
        for stage in &self.stages {
            let ops = stage.ops();
            if n < before + ops {
                let at = Duration::try_from_secs_f64(start + stage.time_of(n - before));
                return Some(at.unwrap_or_else(|_| self.total()));
            }
            before += ops;
            start += stage.duration.as_secs_f64();
        }
        None
    }

    /// The requested rate `secs` seconds from the start (0 past the end).
    pub fn rate_at(&self, secs: f64) -> f64 {
        let mut start = 0.0;
        for stage in &self.stages {
            let d = stage.duration.as_secs_f64();
            if secs < start + d {
                return stage.from + (stage.to - stage.from) * ((secs - start) / d).max(0.0);
            }
            start += d;
        }
        0.0
    }

    /// Where each stage ends, in nanoseconds from the start.
    pub fn ends_ns(&self) -> Vec<u64> {
        let mut end = Duration::ZERO;
        self.stages
            .iter()
            .map(|s| {
                end += s.duration;
                u64::try_from(end.as_nanos()).unwrap_or(u64::MAX)
            })
            .collect()
    }
}

/// Parses `D@RATE[,D@RATE...]` with `D@A..B` for a ramp.
pub fn parse_stages(s: &str) -> Result<Plan, String> {
    let stages = s.split(',').map(parse_stage).collect::<Result<Vec<_>, _>>()?;
    if stages.len() > STAGES_MAX {
        return Err(format!("at most {STAGES_MAX} stages, got {}", stages.len()));
    }
    let total = stages
        .iter()
        .try_fold(Duration::ZERO, |sum, s| sum.checked_add(s.duration));
    if total.is_none_or(|t| t > STAGES_TOTAL_MAX) {
        return Err(format!(
            "the stages {s:?} last longer than {STAGES_TOTAL_MAX:?} in all"
        ));
    }
    if stages.iter().all(|s| s.ops() < 1.0) {
        return Err(format!("the stages {s:?} send no op at all"));
    }
    Ok(Plan { stages })
}

fn parse_stage(s: &str) -> Result<Stage, String> {
    let (d, rate) = s
        .trim()
        .split_once('@')
        .ok_or_else(|| format!("stage {s:?} is not DURATION@RATE (e.g. 10s@1000 or 10s@100..1000)"))?;
    let duration = parse_duration(d.trim()).map_err(|e| format!("stage {s:?}: {e}"))?;
    if duration.is_zero() {
        return Err(format!("stage {s:?} lasts no time"));
    }
    let (from, to) = match rate.split_once("..") {
        Some((a, b)) => (parse_rate(a, s)?, parse_rate(b, s)?),
        None => (parse_rate(rate, s)?, parse_rate(rate, s)?),
    };
    Ok(Stage { duration, from, to })
}

fn parse_rate(t: &str, stage: &str) -> Result<f64, String> {
    let r: f64 = t
        .trim()
        .parse()
        .map_err(|e| format!("stage {stage:?}: bad rate {t:?}: {e}"))?;
    if !(0.0..=STAGE_RATE_MAX).contains(&r) {
        return Err(format!(
            "stage {stage:?}: rates must be between 0 and {STAGE_RATE_MAX} ops/s"
        ));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Option<Duration>) -> f64 {
        d.unwrap().as_secs_f64()
    }

    #[test]
    fn parses_steps_and_ramps_and_rejects_nonsense() {
        let p = parse_stages("10s@1000, 500ms@5..50").unwrap();
        assert_eq!(p.stages.len(), 2);
        assert_eq!(p.stages[1].duration, Duration::from_millis(500));
        assert_eq!((p.stages[1].from, p.stages[1].to), (5.0, 50.0));
        assert_eq!(p.total(), Duration::from_millis(10_500));
        for bad in [
            "",
            "10s",
            "10s@",
            "0s@10",
            "10s@-1",
            "10s@x",
            "1s@0",
            "10s@1..y",
            "31days@1",
            "500000000y@1",
        ] {
            assert!(parse_stages(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_step_spaces_ops_evenly() {
        let p = parse_stages("2s@100").unwrap();
        assert!((secs(p.due(0.0))).abs() < 1e-9);
        assert!((secs(p.due(50.0)) - 0.5).abs() < 1e-9);
        assert!((secs(p.due(199.0)) - 1.99).abs() < 1e-9);
        assert_eq!(p.due(200.0), None);
    }

    #[test]
    fn a_ramp_sends_the_ops_of_its_mean_rate_later_ones_closer() {
        // 0 → 100 ops/s over 2 s: 100 ops, N(t) = 25 t², so op 25 at 1 s.
        let p = parse_stages("2s@0..100,1s@10").unwrap();
        assert!((secs(p.due(25.0)) - 1.0).abs() < 1e-9);
        assert!((secs(p.due(100.0)) - 2.0).abs() < 1e-9);
        assert!((secs(p.due(105.0)) - 2.5).abs() < 1e-9);
        assert_eq!(p.due(110.0), None);
        let down = parse_stages("2s@100..0").unwrap();
        assert!((secs(down.due(75.0)) - 1.0).abs() < 1e-9);
        let gaps: Vec<f64> = (0..99).map(|n| secs(p.due(f64::from(n)))).collect();
        assert!(gaps.windows(3).all(|w| w[2] - w[1] <= w[1] - w[0] + 1e-12));
    }

    #[test]
    fn the_rate_follows_steps_and_ramps() {
        let p = parse_stages("1s@10,2s@100..300").unwrap();
        assert_eq!(p.rate_at(0.5), 10.0);
        assert_eq!(p.rate_at(2.0), 200.0);
        assert_eq!(p.rate_at(3.5), 0.0);
    }

    #[test]
    fn stage_ends_accumulate() {
        let p = parse_stages("1s@1,250ms@1").unwrap();
        assert_eq!(p.ends_ns(), vec![1_000_000_000, 1_250_000_000]);
    }
}
