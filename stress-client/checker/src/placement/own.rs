//! A merged history's bounds on the ops of unknown outcome from each
//! process's own clock. The merge widened every interval by the clock skew,
//! which only pairs from different processes need; two ops of one process
//! share one clock. So, on top of the widened bounds (`cands`), the search
//! gets, per account and process:
//!
//! - a floor: an op takes effect after its own send, so after every op and
//!   read of its process answered before that send;
//! - a window per gap and per missing number, on each process's clock:
//!   after every op of that process sequenced earlier was sent, before every
//!   one sequenced later was answered. Two placed ops in one order must fit
//!   it on their processes' clocks (`search`): an op sent after its process
//!   saw an answer cannot come before an op that took effect before that
//!   answer, on any account.
//!
//! Held to the widened bounds alone, the search put ops of unknown outcome
//! up to the whole window too early, which either hid a violation or left
//! the one order of all ops (`global`, exact within a process) with cycles
//! through the placements, sending the search back again and again.
//!
//! Times here are on each process's clock in the merged frame: the
//! widening taken back off (a send `widened_ns` later, a reply that much
//! earlier).

use crate::history::History;
use crate::order::index::Index;
use crate::order::own;
use crate::order::timeline::Timeline;
use crate::placement::cands::Cand;
use crate::placement::gap::{Gap, NO_OWN_WINDOWS};

/// Gaps this long or shorter get own windows per missing number (as
/// `cands::SLOT_WINDOWS_MAX` for the widened ones).
const OWN_SLOT_WINDOWS_MAX: u64 = 64;

/// One account's timelines per process.
pub(crate) struct OwnTimes {
    /// Per process (empty when `h` is not merged).
    per_process: Vec<Timeline>,
    widened_ns: u64,
}

impl OwnTimes {
    /// Account `a`'s, with its `reads` (sorted by sequence) where they are
    /// tied to their processes.
    pub(crate) fn build(h: &History, index: &Index, a: usize, reads: &[u32]) -> OwnTimes {
        let per_process = match (own::applies(h), own::reads_apply(h)) {
            (false, _) => Vec::new(),
            (true, true) => Timeline::build_per_process_with_reads(h, index, a, reads),
            (true, false) => Timeline::build_per_process(h, index, a),
        };
        OwnTimes {
            per_process,
            widened_ns: h.processes.widened_ns,
        }
    }

    /// The floor `cand` gets from its own process (0 when not merged).
    pub(crate) fn floor(&self, h: &History, cand: &Cand) -> u64 {
        let slack = self.widened_ns.saturating_mul(2);
        self.per_process
            .get(h.processes.of_op(cand.op))
            .map_or(0, |t| t.answered_before(cand.send_ns.saturating_add(slack)))
    }

    /// Sets `gap`'s own windows in `out`: each process's for the whole gap,
    /// then, for a short gap, each process's for each missing number.
    pub(crate) fn set_windows(&self, gap: &mut Gap, out: &mut OwnWindows) {
        gap.own_windows = NO_OWN_WINDOWS;
        if self.per_process.is_empty() {
            return;
        }
        let Ok(start) = u32::try_from(out.windows.len()) else {
            return;
        };
        gap.own_windows = start;
        self.push(gap.first_seq, gap.last_seq(), out);
        if gap.missing > 1 && gap.missing <= OWN_SLOT_WINDOWS_MAX {
            for x in gap.first_seq..=gap.last_seq() {
                self.push(x, x, out);
            }
        }
    }

    /// Each process's window for sequence numbers `first..=last`.
    fn push(&self, first: u64, last: u64, out: &mut OwnWindows) {
        for t in &self.per_process {
            let (lo, hi) = t.window(first, last);
            let hi = if hi == u64::MAX {
                hi
            } else {
                hi.saturating_sub(self.widened_ns)
            };
            out.windows.push((lo.saturating_add(self.widened_ns), hi));
        }
    }
}

/// The own windows of every gap, `processes` per window (see
/// [`OwnTimes::set_windows`]); empty when the history is not merged.
#[derive(Debug, Default)]
pub(crate) struct OwnWindows {
    pub processes: usize,
    pub widened_ns: u64,
    windows: Vec<(u64, u64)>,
}

impl OwnWindows {
    pub(crate) fn new(h: &History) -> OwnWindows {
        OwnWindows {
            processes: if own::applies(h) { h.processes.count() } else { 0 },
            widened_ns: h.processes.widened_ns,
            windows: Vec::new(),
        }
    }

    /// Process `p`'s window for missing number `offset` of `gap` on its
    /// clock: the gap's, narrowed by the number's own where it has one.
    pub(crate) fn slot(&self, gap: &Gap, offset: u64, p: usize) -> (u64, u64) {
        let n = self.processes;
        let whole = |k: usize| self.windows.get(k * n + p).copied();
        if gap.own_windows == NO_OWN_WINDOWS || p >= n {
            return (0, u64::MAX);
        }
        let base = gap.own_windows as usize / n.max(1);
        let Some(w) = whole(base) else {
            return (0, u64::MAX);
        };
        let short = gap.missing > 1 && gap.missing <= OWN_SLOT_WINDOWS_MAX;
        match short.then(|| whole(base + 1 + offset as usize)).flatten() {
            Some((lo, hi)) => (w.0.max(lo), w.1.min(hi)),
            None => w,
        }
    }

    /// The own windows of `slots` (gap, offset) of `gaps`, `processes` per
    /// slot, in slot order: what the search looks up by frame.
    pub(crate) fn per_slot(&self, gaps: &[Gap], slots: impl Iterator<Item = (u32, u64)>) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        if self.processes == 0 {
            return out;
        }
        for (g, offset) in slots {
            let gap = &gaps[g as usize];
            out.extend((0..self.processes).map(|p| self.slot(gap, offset, p)));
        }
        out
    }
}
