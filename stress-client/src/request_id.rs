//! The request id the client sends with each op, built and parsed here only.
//!
//! `{run}-{worker:x}-{number:x}` for the load's ops and `{run}-{worker:x}-i{number:x}`
//! for the invalid ops a worker makes up (`--invalid-rate`); `{run}` is the run's id,
//! or `{id}-p{k:x}` for process `k` attached to a shared run (`--attach`). The
//! format is a contract: settling, the checker's logs, the conformance and zoo
//! tests and the `.ci` scripts read it. Parsing accepts upper-case hex digits
//! (as it always has) but no sign and no leading zeros, so a number has one
//! spelling per case.

use std::fmt;

/// One request id: the run that sent it, its worker and the op's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId<'a> {
    pub run_id: &'a str,
    pub worker: u32,
    pub number: u64,
    /// An invalid op's own id (`i` before the number), never a planned op's.
    pub invalid: bool,
}

impl<'a> RequestId<'a> {
    /// The id of planned op `number` of `worker` in run `run_id`.
    pub fn op(run_id: &'a str, worker: u32, number: u64) -> Self {
        RequestId {
            run_id,
            worker,
            number,
            invalid: false,
        }
    }

    /// The id of invalid op `number` of `worker` that reuses no planned op's id.
    pub fn invalid(run_id: &'a str, worker: u32, number: u64) -> Self {
        RequestId {
            invalid: true,
            ..RequestId::op(run_id, worker, number)
        }
    }

    /// Writes the id into `out`, replacing what it held (no allocation once
    /// `out` is big enough: the fast path reuses one buffer per worker).
    pub fn write_into(&self, out: &mut String) {
        use fmt::Write as _;
        out.clear();
        let _ = write!(out, "{self}");
    }

    /// Reads `got` as a request id of run `run_id`; `None` when it is not one.
    pub fn parse(run_id: &'a str, got: &str) -> Option<Self> {
        let (worker, number) = got.strip_prefix(run_id)?.strip_prefix('-')?.split_once('-')?;
        let (number, invalid) = match number.strip_prefix('i') {
            Some(rest) => (rest, true),
            None => (number, false),
        };
        if !canonical_hex(worker) || !canonical_hex(number) {
            return None;
        }
        Some(RequestId {
            run_id,
            worker: u32::from_str_radix(worker, 16).ok()?,
            number: u64::from_str_radix(number, 16).ok()?,
            invalid,
        })
    }
}

impl fmt::Display for RequestId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.invalid { "i" } else { "" };
        write!(f, "{}-{:x}-{mark}{:x}", self.run_id, self.worker, self.number)
    }
}

/// The run id process `k` puts in its request ids when attached to run `id`,
/// so that processes sharing accounts never send the same request id.
pub fn process_run_id(id: &str, k: u32) -> String {
    format!("{id}-p{k:x}")
}

/// Hex digits as `{:x}` writes them (any case): no sign, no leading zero.
fn canonical_hex(t: &str) -> bool {
    !t.is_empty() && !t.starts_with('+') && (t == "0" || !t.starts_with('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_unchanged() {
        assert_eq!(RequestId::op("r", 3, 0x4d).to_string(), "r-3-4d");
        assert_eq!(RequestId::invalid("r", 3, 10).to_string(), "r-3-ia");
        assert_eq!(process_run_id("run", 10), "run-pa");
        let mut out = String::from("old");
        RequestId::op("0123456789abcdef", 255, 16).write_into(&mut out);
        assert_eq!(out, "0123456789abcdef-ff-10");
    }

    #[test]
    fn the_widest_id_fits() {
        let id = RequestId::invalid("0123456789abcdef", u32::MAX, u64::MAX).to_string();
        assert!(id.len() <= 64, "{id}");
    }

    #[test]
    fn parse_reads_back_what_was_built() {
        let run = "ab-p2";
        for id in [
            RequestId::op(run, 0, 0),
            RequestId::op(run, 7, u64::MAX),
            RequestId::invalid(run, 1, 9),
        ] {
            assert_eq!(RequestId::parse(run, &id.to_string()), Some(id));
        }
        assert_eq!(
            RequestId::parse(run, "ab-p2-FF-A"),
            Some(RequestId::op(run, 255, 10))
        );
    }

    #[test]
    fn parse_refuses_what_is_not_one() {
        for bad in [
            "",
            "ab-p2",
            "ab-p2-",
            "ab-p2-1",
            "ab-p2--1",
            "ab-p2-1-",
            "ab-p2-01-1",
            "ab-p2-1-+1",
            "ab-p3-1-1",
            "ab-p2-1-g",
            "ab-p2-1-1-1",
            "ab-p2-1-i",
        ] {
            assert_eq!(RequestId::parse("ab-p2", bad), None, "{bad:?}");
        }
    }
}
