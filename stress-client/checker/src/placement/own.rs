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
    /// Also notes in `out` each of the account's ops' bounds (see
    /// [`OwnWindows::note_ops`]).
    pub(crate) fn build(
        h: &History,
        index: &Index,
        a: usize,
        reads: &[u32],
        out: &mut OwnWindows,
    ) -> OwnTimes {
        let n = out.processes;
        if n == 0 {
            return OwnTimes {
                per_process: Vec::new(),
                widened_ns: h.processes.widened_ns,
            };
        }
        let reads = if own::reads_apply(h) { reads } else { &[] };
        let mut latest = vec![0u64; n];
        let per_process = Timeline::build_per_process_seeing(h, index, a, reads, |v| {
            if let Some(l) = latest.get_mut(v.process) {
                *l = (*l).max(v.send_ns.saturating_add(out.widened_ns));
            }
            if let Some(op) = v.op {
                out.note_op(op, &latest);
            }
        });
        OwnTimes {
            per_process,
            widened_ns: h.processes.widened_ns,
        }
    }

    /// The floor an op of unknown outcome sent at `send_ns` gets from its
    /// own process (0 when not merged).
    pub(crate) fn floor(&self, h: &History, (op, send_ns): (u32, u64)) -> u64 {
        let slack = self.widened_ns.saturating_mul(2);
        self.per_process
            .get(h.processes.of_op(op))
            .map_or(0, |t| t.answered_before(send_ns.saturating_add(slack)))
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
/// [`OwnTimes::set_windows`]), and each candidate's lower bounds on each
/// process's clock (see [`OwnWindows::set_cand_bounds`]); empty when the
/// history is not merged.
#[derive(Debug, Default)]
pub(crate) struct OwnWindows {
    pub processes: usize,
    pub widened_ns: u64,
    windows: Vec<(u64, u64)>,
    /// Per op of known outcome, `processes` per op: the latest send on each
    /// process's clock among the ops and reads sequenced up to it on its
    /// accounts (it took effect after them). Freed once the candidates'
    /// bounds are set.
    op_bounds: Vec<u64>,
    /// Per candidate, `processes` each: when it can have taken effect at
    /// the earliest on each process's clock.
    cand_bounds: Vec<u64>,
}

impl OwnWindows {
    pub(crate) fn new(h: &History) -> OwnWindows {
        let processes = if own::applies(h) { h.processes.count() } else { 0 };
        OwnWindows {
            processes,
            widened_ns: h.processes.widened_ns,
            windows: Vec::new(),
            op_bounds: vec![0; h.ops.len().saturating_mul(processes)],
            cand_bounds: Vec::new(),
        }
    }

    /// Op `op` took effect after the latest sends `latest` (one per
    /// process) on one of its accounts.
    fn note_op(&mut self, op: u32, latest: &[u64]) {
        let n = self.processes;
        let Some(slots) = self.op_bounds.get_mut(op as usize * n..(op as usize + 1) * n) else {
            return;
        };
        for (slot, &t) in slots.iter_mut().zip(latest) {
            *slot = (*slot).max(t);
        }
    }

    /// Sets each candidate's bounds: an op of unknown outcome took effect
    /// after every op of its process answered before it was sent, so after
    /// what each of those took effect after, on every process's clock. This
    /// carries one process's clock across accounts to another's: an op sent
    /// after its process saw X answered, where X came after an op another
    /// process sent once it saw Y answered, took effect after Y, which the
    /// windows of its own account alone cannot tell.
    /// `cands` holds each candidate's op and send time.
    pub(crate) fn set_cand_bounds(&mut self, h: &History, cands: &[(u32, u64)]) {
        let n = self.processes;
        if n == 0 {
            return;
        }
        self.cand_bounds = vec![0; cands.len() * n];
        let mut by_process: Vec<Vec<u32>> = vec![Vec::new(); n];
        for (i, &(op, _)) in cands.iter().enumerate() {
            by_process[h.processes.of_op(op).min(n - 1)].push(i as u32);
        }
        for (p, mine) in by_process.iter_mut().enumerate() {
            self.bounds_of(h, p, cands, mine);
        }
        self.op_bounds = Vec::new();
    }

    /// Process `p`'s candidates `mine`: its answered ops by reply time meet
    /// them by send time through one pointer, keeping the bounds' maximum.
    fn bounds_of(&mut self, h: &History, p: usize, cands: &[(u32, u64)], mine: &mut [u32]) {
        let n = self.processes;
        let slack = self.widened_ns.saturating_mul(2);
        let mut answered: Vec<u32> = (0..h.ops.len() as u32)
            .filter(|&i| h.processes.of_op(i) == p && !h.ops[i as usize].outcome.is_open())
            .collect();
        answered.sort_unstable_by_key(|&i| h.ops[i as usize].recv_ns);
        mine.sort_unstable_by_key(|&c| cands[c as usize].1);
        let mut latest = vec![0u64; n];
        let mut next = 0;
        for &c in mine.iter() {
            let sent = cands[c as usize].1.saturating_add(slack);
            while let Some(&x) = answered.get(next).filter(|&&x| h.ops[x as usize].recv_ns < sent) {
                let x = x as usize;
                for (l, &b) in latest.iter_mut().zip(&self.op_bounds[x * n..(x + 1) * n]) {
                    *l = (*l).max(b);
                }
                next += 1;
            }
            self.cand_bounds[c as usize * n..(c as usize + 1) * n].copy_from_slice(&latest);
        }
    }

    /// Candidate `c`'s earliest on process `p`'s clock (0: nothing known).
    pub(crate) fn cand_bound(&self, c: u32, p: usize) -> u64 {
        self.cand_bounds
            .get(c as usize * self.processes + p)
            .copied()
            .unwrap_or(0)
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
