//! Processes' histories as `stress-client check` merges them, for the merge
//! tests: each process with its own monotonic clock and its own wall-clock
//! error, anchored on one run.
#![allow(dead_code)]

use std::time::Duration;

use bank_checker::History;
use stress_client::history::merge::merge;
use stress_client::history::schema::{EndLine, Header};
use stress_client::history::{Anchor, Parsed};

const WALL_NS: u64 = 1_700_000_000_000_000_000;

/// `h` as process `p`'s file: its monotonic clock reads `origin_ns` at true
/// time 0, it took its anchor at true time `at_ns`, and its wall clock is
/// `error_ns` off the truth.
pub fn file(p: u32, h: History, origin_ns: u64, at_ns: u64, error_ns: i64) -> (String, Parsed) {
    let wall = (WALL_NS + at_ns).saturating_add_signed(error_ns);
    let anchor = Anchor {
        mono_ns: origin_ns + at_ns,
        wall_unix_ns: wall,
    };
    let header = Header {
        format: "bank-history".into(),
        version: 1,
        run_id: "r".into(),
        process_id: p,
        role: "attached".into(),
        start_anchor: anchor,
    };
    let end = EndLine {
        accounts: 0,
        ops: 0,
        reads: 0,
        duplicates: 0,
        invalid: 0,
        finals: 0,
        end_anchor: anchor,
    };
    (
        format!("p{p}.jsonl"),
        Parsed {
            header,
            end,
            history: h,
            request_ids: Vec::new(),
        },
    )
}

/// Moves every time of `h` by `by_ns` (never stays never).
pub fn shift(h: &mut History, by_ns: u64) {
    h.map_times(|t| t + by_ns);
}

/// Merges the parts, process p's monotonic clock reading p seconds at true
/// time 0, its anchor taken p × 50 µs later, its wall clock off by `errors[p]`.
pub fn merged(parts: Vec<History>, errors: &[i64], window: Duration) -> History {
    let files = parts
        .into_iter()
        .enumerate()
        .map(|(p, mut h)| {
            let origin = p as u64 * 1_000_000_000;
            shift(&mut h, origin);
            file(p as u32, h, origin, p as u64 * 50_000, errors[p])
        })
        .collect();
    merge(files, window).expect("merges").history
}
