//! Durations for people: µs below 1 ms, then ms, then s, the unit always
//! shown ("p50 1.00 s", never "p50 1002495"). The JSON stays in µs; only
//! text meant to be read goes through here.

/// Microseconds in a millisecond and in a second.
const US_PER_MS: f64 = 1e3;
const US_PER_S: f64 = 1e6;

/// A unit a duration is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Us,
    Ms,
    S,
}

impl Unit {
    /// The unit a value of `us` microseconds reads best in (a value that
    /// would round up to 1000 of a unit takes the next one).
    pub fn for_us(us: f64) -> Unit {
        match us.abs() {
            a if a < US_PER_MS - 0.05 => Unit::Us,
            a if a < US_PER_S - 5.0 => Unit::Ms,
            _ => Unit::S,
        }
    }

    /// Microseconds per one of this unit.
    pub fn scale(self) -> f64 {
        match self {
            Unit::Us => 1.0,
            Unit::Ms => US_PER_MS,
            Unit::S => US_PER_S,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Us => "µs",
            Unit::Ms => "ms",
            Unit::S => "s",
        }
    }
}

/// A duration given in µs, e.g. `169 µs`, `1.12 ms`, `1.00 s`.
pub fn duration(us: f64) -> String {
    let unit = Unit::for_us(us);
    match unit {
        Unit::Us if us == us.trunc() => format!("{us:.0} µs"),
        Unit::Us => format!("{us:.1} µs"),
        _ => format!("{:.2} {}", us / unit.scale(), unit.symbol()),
    }
}

/// [`duration`] of a whole number of µs.
pub fn us(v: u64) -> String {
    duration(v as f64)
}

/// A value in a unit named as `thresholds[].unit` says: `us` (shown as a
/// duration), `percent`, or any other (e.g. `ops/s`) after the number.
pub fn with_unit(value: f64, unit: &str) -> String {
    match unit {
        "us" => duration(value),
        "percent" => format!("{value:.3}%"),
        unit => format!("{value:.1} {unit}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_range_has_its_unit() {
        assert_eq!(us(0), "0 µs");
        assert_eq!(us(169), "169 µs");
        assert_eq!(us(999), "999 µs");
        assert_eq!(us(1000), "1.00 ms");
        assert_eq!(us(1115), "1.11 ms");
        assert_eq!(us(93_000), "93.00 ms");
        assert_eq!(us(999_994), "999.99 ms");
        assert_eq!(us(999_999), "1.00 s");
        assert_eq!(duration(999.96), "1.00 ms");
        assert_eq!(us(1_002_495), "1.00 s");
        assert_eq!(us(62_500_000), "62.50 s");
        assert_eq!(duration(12.34), "12.3 µs");
        assert_eq!(with_unit(2500.0, "us"), "2.50 ms");
        assert_eq!(with_unit(0.25, "percent"), "0.250%");
        assert_eq!(with_unit(990.04, "ops/s"), "990.0 ops/s");
    }
}
