//! The depth-first search behind `place`. The missing sequence numbers
//! (slots) are visited in the order of their time windows, each account's
//! in sequence order, so the two legs of a transfer of unknown outcome are
//! placed close together, as they happened. Each slot tries the candidates
//! allowed there by real time, most recently sent first (the usual truth),
//! approved then denied. In a merged history two ops placed in one gap must
//! also fit each other on their processes' own clocks (`own`).
//!
//! Dead ends: a slot that finds no choice at all jumps back to the deepest
//! slot whose choice ruled one of its options out, and a transfer with one
//! leg placed that can no longer get its second jumps back to the slot of
//! its first leg or a slot where the second could have gone (Gaschnig's
//! backjumping: still complete, and it skips the unrelated slots between);
//! a slot whose choices all failed further on steps back one slot. A step
//! budget bounds it all.

use crate::history::{History, Kind};
use crate::order::index::Placed;
use crate::placement::cands::{meets, Cand, NONE};
use crate::placement::gap::{Gap, NO_SLOT_WINDOWS};
use crate::placement::own::OwnWindows;

/// A `placed_at` entry that names no frame, and a slot without a predecessor.
const NO_FRAME: u32 = u32::MAX;
/// How far along a gap a placed op is checked against the others on the
/// processes' own clocks (merged histories; see `in_own_order`).
const OWN_CHAIN_MAX: usize = 16;
/// Up to this many processes, two placed ops are checked on every
/// process's clock (a third process's clock can order them: `own`'s
/// candidate bounds carry clocks across accounts); beyond, on their own
/// two, so the cost per check stays bounded.
const ALL_CLOCKS_MAX: usize = 16;

/// How a run of the search treats its gaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Every gap at once, transfers on both sides with one outcome: the real test.
    Together,
    /// Gaps alone, transfers free on their other side (a necessary
    /// condition: a gap infeasible alone is infeasible in any placement).
    Alone,
    /// As `Alone`, and second applications of duplicated ops may be used.
    AloneTwice,
}

/// How a run ended.
pub(crate) enum Run {
    Found,
    Exhausted,
    Budget,
}

/// One missing sequence number.
#[derive(Debug, Clone, Copy)]
struct Slot {
    gap: u32,
    account: u32,
    seq: u64,
    /// The slots before and after it in the same gap (`NO_FRAME`: none).
    prev: u32,
    next: u32,
    last: bool,
    window_ns: (u64, u64),
}

/// The choice state of one slot.
#[derive(Debug, Clone, Copy)]
struct Frame {
    before: i128,
    /// Candidates of the account's list still to try (counting down), and
    /// whether the next try of the current one is the denial.
    cursor: usize,
    deny_next: bool,
    /// The choice in force: candidate, approved, balance after.
    chosen: Option<(u32, bool, i128)>,
    /// Some choice was ever applied here (so a dead end is not a leaf).
    tried: bool,
}

/// The search's state.
pub(crate) struct Search<'a> {
    pub h: &'a History,
    pub cands: Vec<Cand>,
    /// Per account: candidates touching it, sorted by their floor there.
    lists: Vec<Vec<u32>>,
    /// Per candidate: legs placed, outcome, the account and window of its
    /// first leg, and the frames that placed it.
    used: Vec<u8>,
    approved: Vec<bool>,
    first_account: Vec<u32>,
    window: Vec<(u64, u64)>,
    /// The window of a transfer's second leg.
    window2: Vec<(u64, u64)>,
    placed_at: Vec<[u32; 2]>,
    /// Transfers with one leg placed (joint runs only).
    open: Vec<u32>,
    gaps: Vec<Gap>,
    /// Per account: its range in `gaps` (for the forward check).
    ranges: Vec<(usize, usize)>,
    slots: Vec<Slot>,
    frames: Vec<Frame>,
    mode: Mode,
    /// (op, account, sequence) spots the global order ruled out.
    forbidden: Vec<(u32, u32, u64)>,
    /// The windows of single missing numbers (see `Gap::slot_windows`).
    slot_windows: Vec<(u64, u64)>,
    /// Merged histories: the gaps' windows on each process's own clock, and
    /// each slot's (`own.processes` per slot, in slot order).
    own: OwnWindows,
    slot_own: Vec<(u64, u64)>,
    pub steps: u64,
}

impl<'a> Search<'a> {
    pub(crate) fn new(
        h: &'a History,
        cands: Vec<Cand>,
        (slot_windows, own): (Vec<(u64, u64)>, OwnWindows),
    ) -> Search<'a> {
        let mut lists = vec![Vec::new(); h.accounts.len()];
        for (i, c) in cands.iter().enumerate() {
            for a in [c.from, c.to] {
                if let Some(list) = lists.get_mut(a as usize) {
                    list.push(i as u32);
                }
            }
        }
        for (a, list) in lists.iter_mut().enumerate() {
            // Tried from the end: the highest floor first (the most
            // recently sent, the usual truth); among equal floors (sent
            // after the same answers) the earliest sent, as ops in flight
            // together mostly take effect in the order sent. Ties taken the
            // other way put a merged history's ops of unknown outcome in
            // orders its processes' clocks then ruled out (`global`).
            list.sort_by_key(|&c| {
                let cand = &cands[c as usize];
                (cand.floor(a as u32), std::cmp::Reverse(cand.send_ns))
            });
        }
        let n = cands.len();
        Search {
            h,
            cands,
            lists,
            used: vec![0; n],
            approved: vec![false; n],
            first_account: vec![0; n],
            window: vec![(0, u64::MAX); n],
            window2: vec![(0, u64::MAX); n],
            placed_at: vec![[NO_FRAME; 2]; n],
            open: Vec::new(),
            gaps: Vec::new(),
            ranges: Vec::new(),
            slots: Vec::new(),
            frames: Vec::new(),
            mode: Mode::Together,
            forbidden: Vec::new(),
            slot_windows,
            own,
            slot_own: Vec::new(),
            steps: 0,
        }
    }

    /// Rules out these (op, account, sequence) spots in joint runs from now on.
    pub(crate) fn forbid(&mut self, spots: &[(u32, u32, u64)]) {
        self.forbidden = spots.to_vec();
    }

    /// Searches for a placement filling every missing number of `gaps`
    /// (sorted by account, then sequence) within `budget` steps.
    pub(crate) fn run(&mut self, gaps: &[Gap], budget: u64, mode: Mode) -> Run {
        self.reset(gaps, mode);
        let mut advancing = true;
        loop {
            self.steps += 1;
            if self.steps > budget {
                return Run::Budget;
            }
            if advancing {
                let k = self.frames.len();
                if let Some(c) = self.doomed(k) {
                    let Some(keep) = self.owed_culprit(c) else {
                        return Run::Exhausted;
                    };
                    self.pop_to(keep);
                } else if k == self.slots.len() {
                    return Run::Found;
                } else {
                    let before = self.before(k);
                    let cursor = self.prefix(k);
                    self.frames.push(Frame {
                        before,
                        cursor,
                        deny_next: false,
                        chosen: None,
                        tried: false,
                    });
                }
            }
            let Some(depth) = self.frames.len().checked_sub(1) else {
                return Run::Exhausted;
            };
            let fresh = !self.frames[depth].tried;
            self.undo(depth);
            advancing = self.choose(depth);
            if advancing {
                continue;
            }
            let keep = if fresh { self.culprit(depth) } else { Some(depth) };
            let Some(keep) = keep else { return Run::Exhausted };
            self.pop_to(keep);
        }
    }

    /// Lays out the slots in time order and clears the state.
    fn reset(&mut self, gaps: &[Gap], mode: Mode) {
        self.mode = mode;
        self.gaps = gaps.to_vec();
        self.ranges = account_ranges(gaps, self.lists.len());
        self.slots = slots_in_time_order(gaps, &self.slot_windows);
        let offsets = self
            .slots
            .iter()
            .map(|s| (s.gap, s.seq - gaps[s.gap as usize].first_seq));
        self.slot_own = self.own.per_slot(gaps, offsets);
        self.frames.clear();
        self.open.clear();
        self.used.fill(0);
        self.placed_at.fill([NO_FRAME; 2]);
        self.steps = 0;
    }

    /// Pops frames (taking back their choices) until `keep` are left.
    fn pop_to(&mut self, keep: usize) {
        while self.frames.len() > keep {
            let depth = self.frames.len() - 1;
            self.undo(depth);
            self.frames.pop();
        }
    }

    /// The balance before slot `k`: its gap's, or after the slot before it.
    fn before(&self, k: usize) -> i128 {
        let slot = self.slots[k];
        match self.frames.get(slot.prev as usize).and_then(|f| f.chosen) {
            Some((_, _, after)) if slot.prev != NO_FRAME => after,
            _ => self.gaps[slot.gap as usize].before,
        }
    }

    /// How many of the account's candidates real time allows at slot `k`.
    fn prefix(&self, k: usize) -> usize {
        let slot = self.slots[k];
        let list = &self.lists[slot.account as usize];
        list.partition_point(|&c| self.cands[c as usize].floor(slot.account) < slot.seq)
    }

    /// A transfer with one leg placed that can no longer get its second
    /// before slot `k`: every later slot's window starts after its own ends.
    fn doomed(&self, k: usize) -> Option<u32> {
        let lo = self.slots.get(k).map_or(u64::MAX, |s| s.window_ns.0);
        self.open
            .iter()
            .copied()
            .find(|&c| self.window[c as usize].1 < lo || k == self.slots.len())
    }

    /// Moves frame `depth` to its next valid choice and applies it; false
    /// when none is left.
    fn choose(&mut self, depth: usize) -> bool {
        let slot = self.slots[depth];
        let mut f = self.frames[depth];
        let found = loop {
            if f.cursor == 0 {
                break None;
            }
            let c = self.lists[slot.account as usize][f.cursor - 1];
            let approve = !f.deny_next;
            if f.deny_next {
                f.cursor -= 1;
            }
            f.deny_next = !f.deny_next;
            let after = self.effect(c, depth, f.before, approve);
            if let Some(after) = after.filter(|&b| !slot.last || b == self.gaps[slot.gap as usize].after) {
                break Some((c, approve, after));
            }
        };
        f.chosen = found;
        f.tried |= found.is_some();
        self.frames[depth] = f;
        if let Some((c, approve, _)) = found {
            self.apply(c, depth, approve);
        }
        found.is_some()
    }

    /// The balance after candidate `c` in the slot of frame `depth` from `before`, if it may stand there.
    fn effect(&self, c: u32, depth: usize, before: i128, approve: bool) -> Option<i128> {
        let slot = &self.slots[depth];
        let cand = &self.cands[c as usize];
        if cand.reapply && self.mode != Mode::AloneTwice {
            return None;
        }
        let i = c as usize;
        if self.mode == Mode::Together && self.forbidden.contains(&(cand.op, slot.account, slot.seq)) {
            return None;
        }
        let free = match (self.mode, self.used[i], cand.other(slot.account)) {
            (_, 0, None) => meets(slot.window_ns, slot.window_ns, cand.send_ns),
            (Mode::Together, 0, Some(b)) => {
                meets(slot.window_ns, slot.window_ns, cand.send_ns) && self.reachable(cand, b, slot.window_ns)
            }
            (Mode::Together, 1, Some(b)) => {
                self.first_account[i] == b
                    && self.approved[i] == approve
                    && meets(self.window[i], slot.window_ns, cand.send_ns)
            }
            (_, 0, Some(_)) => meets(slot.window_ns, slot.window_ns, cand.send_ns),
            _ => false,
        };
        if !free || !self.in_order(c, slot, depth) {
            return None;
        }
        self.balance_after(c, slot.account, before, approve)
    }

    /// When candidate `c` can have taken effect: after it was sent, inside
    /// the windows of the legs placed so far (and of `extra`, a leg about to be).
    fn effective(&self, c: u32, extra: Option<(u64, u64)>) -> (u64, u64) {
        let i = c as usize;
        let mut w = (self.cands[i].send_ns, u64::MAX);
        let placed = [
            (self.used[i] >= 1).then_some(self.window[i]),
            (self.used[i] >= 2).then_some(self.window2[i]),
            extra,
        ];
        for (lo, hi) in placed.into_iter().flatten() {
            w = (w.0.max(lo), w.1.min(hi));
        }
        w
    }

    /// Placing `c` in `slot` keeps each gap's ops in an order real time
    /// allows: nothing placed before it in a gap can have happened wholly
    /// after it, nor anything placed after it wholly before it. For a
    /// transfer's second leg this is checked in the first leg's gap too.
    fn in_order(&self, c: u32, slot: &Slot, depth: usize) -> bool {
        let me = self.effective(c, Some(slot.window_ns));
        let mut spots = vec![(slot.prev, true)];
        if self.used[c as usize] == 1 {
            if let Some(first) = self.placed_frames(c).next() {
                spots.push((self.slots[first].prev, true));
                spots.push((self.slots[first].next, false));
            }
        }
        let fits = spots.iter().all(|&(k, before)| {
            let Some((other, _, _)) = self.frames.get(k as usize).and_then(|f| f.chosen) else {
                return true;
            };
            let them = self.effective(other, None);
            if before {
                me.1 >= them.0
            } else {
                them.1 >= me.0
            }
        });
        fits && (self.own.processes == 0 || self.in_own_clocks(c, depth, &spots))
    }

    /// The checks of `in_order` on each process's clock (see
    /// [`ALL_CLOCKS_MAX`]), exact there. Placing `c` in the slot of frame
    /// `depth` must leave it a moment to take effect on every clock (not
    /// after the earliest answer of an op sequenced after it, on a clock
    /// where it must come later than that: its bounds carried across
    /// accounts, `own`), and it must fit every op placed in its gap, not
    /// only the next one (an op of a third process between them has wider
    /// windows on their clocks and would let the pair through): an op sent
    /// after its process saw an answer cannot come before an op that took
    /// effect before that answer. Its own windows are worked out once.
    fn in_own_clocks(&self, c: u32, depth: usize, spots: &[(u32, bool)]) -> bool {
        let n = self.own.processes;
        let mut me = [(0, u64::MAX); ALL_CLOCKS_MAX];
        for (p, w) in me.iter_mut().enumerate().take(n) {
            *w = self.effective_own(c, p, Some(depth));
            if w.0 > w.1 {
                return false;
            }
        }
        spots.iter().all(|&(k, before)| {
            self.chain(k, before)
                .all(|(_, o)| self.in_own_order(c, depth, (o, before), &me))
        })
    }

    /// The ops placed in frame `k` and the frames before it in its gap
    /// (`before`), or after it, up to [`OWN_CHAIN_MAX`]: (frame, candidate).
    fn chain(&self, k: u32, before: bool) -> impl Iterator<Item = (usize, u32)> + '_ {
        std::iter::successors(Some(k), move |&k| {
            let s = self.slots.get(k as usize)?;
            Some(if before { s.prev } else { s.next })
        })
        .take_while(|&k| k != NO_FRAME)
        .take(OWN_CHAIN_MAX)
        .filter_map(|k| {
            let (c, _, _) = self.frames.get(k as usize)?.chosen?;
            Some((k as usize, c))
        })
    }

    /// `c` (its windows `me`, up to [`ALL_CLOCKS_MAX`] processes) fits op
    /// `other` placed `before` it in a gap, or after it, on every clock; past
    /// that many processes, on the two ops' own clocks.
    fn in_own_order(&self, c: u32, depth: usize, (other, before): (u32, bool), me: &[(u64, u64)]) -> bool {
        let fits = |p: usize, me: (u64, u64)| {
            let them = self.effective_own(other, p, None);
            if before {
                me.1 >= them.0
            } else {
                them.1 >= me.0
            }
        };
        let n = self.own.processes;
        if n <= ALL_CLOCKS_MAX {
            return (0..n).all(|p| fits(p, me[p]));
        }
        let of = |c: u32| self.h.processes.of_op(self.cands[c as usize].op);
        [of(c), of(other)]
            .into_iter()
            .all(|p| fits(p, self.effective_own(c, p, Some(depth))))
    }

    /// When candidate `c` can have taken effect on process `p`'s clock:
    /// after its send if it is `p`'s, inside `p`'s windows of the slots it
    /// is placed in (and of frame `extra`'s, about to be).
    fn effective_own(&self, c: u32, p: usize, extra: Option<usize>) -> (u64, u64) {
        let cand = &self.cands[c as usize];
        let n = self.own.processes;
        let mut w = (0, u64::MAX);
        if self.h.processes.of_op(cand.op) == p {
            w.0 = cand.send_ns.saturating_add(self.own.widened_ns);
        }
        w.0 = w.0.max(self.own.cand_bound(c, p));
        for k in self.placed_frames(c).chain(extra) {
            if let Some(&(lo, hi)) = self.slot_own.get(k * n + p) {
                w = (w.0.max(lo), w.1.min(hi));
            }
        }
        w
    }

    /// Forward check for a transfer's first leg in a slot with `window`:
    /// some gap of the other account `b` must meet it in time above the
    /// transfer's floor there, or the second leg has nowhere to go.
    fn reachable(&self, cand: &Cand, b: u32, window: (u64, u64)) -> bool {
        let Some(&(start, end)) = self.ranges.get(b as usize) else {
            return false;
        };
        let gaps = &self.gaps[start..end];
        let low = window.0.max(cand.send_ns);
        let from = gaps.partition_point(|g| g.window_ns.1 < low);
        let to = gaps.partition_point(|g| g.window_ns.0 <= window.1);
        gaps.get(from..to.max(from)).is_some_and(|range| {
            range
                .iter()
                .any(|g| meets(window, g.window_ns, cand.send_ns) && g.last_seq() > cand.floor(b))
        })
    }

    /// The balance after candidate `c` on account `a`, approved or denied,
    /// from `before`; `None` where the contract rules that out.
    pub(crate) fn balance_after(&self, c: u32, a: u32, before: i128, approve: bool) -> Option<i128> {
        let cand = &self.cands[c as usize];
        let amount = i128::from(cand.amount);
        match (approve, cand.credits(a)) {
            (true, true) => Some(before + amount).filter(|b| *b <= i128::from(u64::MAX)),
            (true, false) => (before >= amount).then_some(before - amount),
            (false, _) if cand.kind == Kind::Deposit => None,
            (false, true) => Some(before),
            (false, false) => (before < amount).then_some(before),
        }
    }

    /// Places candidate `c` in the slot of frame `depth`.
    fn apply(&mut self, c: u32, depth: usize, approve: bool) {
        let i = c as usize;
        let slot = self.slots[depth];
        if self.used[i] == 0 {
            self.first_account[i] = slot.account;
            self.window[i] = slot.window_ns;
            self.approved[i] = approve;
        } else {
            self.window2[i] = slot.window_ns;
        }
        self.used[i] += 1;
        self.mark(c, depth, true);
        self.track_open(c);
    }

    /// Takes back the choice in force at frame `depth`, if any.
    fn undo(&mut self, depth: usize) {
        let Some((c, _, _)) = self.frames[depth].chosen.take() else {
            return;
        };
        let i = c as usize;
        self.used[i] = self.used[i].saturating_sub(1);
        self.mark(c, depth, false);
        self.track_open(c);
    }

    /// Keeps `open` (the transfers owed their second leg, in a joint run)
    /// up to date after candidate `c` gained or lost a leg.
    fn track_open(&mut self, c: u32) {
        let i = c as usize;
        if self.mode == Mode::Together && self.cands[i].to != NONE {
            if self.used[i] == 1 {
                self.open.push(c);
            } else {
                self.open.retain(|&o| o != c);
            }
        }
    }

    /// Notes (or forgets) that frame `depth` placed candidate `c`.
    fn mark(&mut self, c: u32, depth: usize, placed: bool) {
        let slots = &mut self.placed_at[c as usize];
        let depth = u32::try_from(depth).unwrap_or(NO_FRAME);
        let (from, to) = if placed {
            (NO_FRAME, depth)
        } else {
            (depth, NO_FRAME)
        };
        if let Some(s) = slots.iter_mut().find(|s| **s == from) {
            *s = to;
        }
    }
}

impl Search<'_> {
    /// Frame `depth` found no choice at all: how many frames to keep. The
    /// culprits are the slot before it in its gap (which set its balance)
    /// and every frame that placed a candidate that would otherwise fit;
    /// `None` when there is none, so the slot can never be filled.
    fn culprit(&self, depth: usize) -> Option<usize> {
        let slot = self.slots[depth];
        let mut deepest: Option<usize> = (slot.prev != NO_FRAME).then_some(slot.prev as usize);
        let before = self.frames[depth].before;
        let after = self.gaps[slot.gap as usize].after;
        // The ops placed before it in its gap, and where else they are
        // placed: what the own-clock checks held against every candidate.
        let gap_culprit = self.own_culprit(std::iter::once((slot.prev, true)), depth);
        let mut any_fits = false;
        for &c in &self.lists[slot.account as usize][..self.prefix(depth)] {
            let cand = &self.cands[c as usize];
            if cand.reapply && self.mode != Mode::AloneTwice {
                continue;
            }
            let fits = [true, false].into_iter().any(|approve| {
                self.balance_after(c, slot.account, before, approve)
                    .is_some_and(|b| !slot.last || b == after)
            });
            if fits {
                deepest = deepest.max(self.placed_frames(c).filter(|&f| f < depth).max());
                deepest = deepest.max(self.neighbours(c).filter(|&f| f < depth).max());
                let starts = self
                    .placed_frames(c)
                    .flat_map(|f| [(self.slots[f].prev, true), (self.slots[f].next, false)]);
                deepest = deepest.max(self.own_culprit(starts, depth));
                any_fits = true;
            }
        }
        if any_fits {
            deepest = deepest.max(gap_culprit);
        }
        deepest.map(|d| d + 1)
    }

    /// Merged histories: the deepest frame below `depth` among the ops
    /// placed in the gap chains from `starts` (see `chain`), which the
    /// own-clock checks held a candidate against, and the frames that placed
    /// them elsewhere (their windows come from all their slots).
    fn own_culprit(&self, starts: impl Iterator<Item = (u32, bool)>, depth: usize) -> Option<usize> {
        if self.own.processes == 0 {
            return None;
        }
        starts
            .flat_map(|(k, before)| self.chain(k, before))
            .flat_map(|(k, other)| self.placed_frames(other).chain([k]))
            .filter(|&f| f < depth)
            .max()
    }

    /// Transfer `c` can no longer get its second leg: how many frames to
    /// keep. The culprits are the frame of its first leg and every frame of
    /// the other account where the second could have gone by real time.
    fn owed_culprit(&self, c: u32) -> Option<usize> {
        let cand = &self.cands[c as usize];
        let first = self.first_account[c as usize];
        let other = cand.other(first)?;
        let mut deepest = self.placed_frames(c).max();
        for (k, slot) in self.slots.iter().enumerate().take(self.frames.len()) {
            let fits = slot.account == other
                && slot.seq > cand.floor(other)
                && meets(self.window[c as usize], slot.window_ns, cand.send_ns);
            if fits {
                deepest = deepest.max(Some(k));
            }
        }
        deepest.map(|d| d + 1)
    }

    /// The frames next to those of candidate `c` in their gaps.
    fn neighbours(&self, c: u32) -> impl Iterator<Item = usize> + '_ {
        self.placed_frames(c)
            .flat_map(move |f| [self.slots[f].prev, self.slots[f].next])
            .filter(|&k| k != NO_FRAME && (k as usize) < self.frames.len())
            .map(|k| k as usize)
    }

    /// The frames that placed candidate `c`.
    fn placed_frames(&self, c: u32) -> impl Iterator<Item = usize> + '_ {
        self.placed_at[c as usize]
            .iter()
            .filter(|&&f| f != NO_FRAME)
            .map(|&f| f as usize)
    }

    /// The placements of the last successful run, one per op, sorted by op.
    pub(crate) fn placements(&self) -> Vec<Placed> {
        let mut placed: Vec<Placed> = Vec::new();
        for (slot, f) in self.slots.iter().zip(&self.frames) {
            let Some((c, approved, after)) = f.chosen else {
                continue;
            };
            let cand = &self.cands[c as usize];
            let balance = u64::try_from(after).unwrap_or(0);
            let mut p = Placed {
                op: cand.op,
                approved,
                seq: 0,
                balance: 0,
                to_seq: 0,
                to_balance: 0,
            };
            if slot.account == cand.from {
                (p.seq, p.balance) = (slot.seq, balance);
            } else {
                (p.to_seq, p.to_balance) = (slot.seq, balance);
            }
            placed.push(p);
        }
        placed.sort_by_key(|p| p.op);
        placed.dedup_by(|later, first| {
            let same = later.op == first.op;
            if same {
                first.seq = first.seq.max(later.seq);
                first.balance = first.balance.max(later.balance);
                first.to_seq = first.to_seq.max(later.to_seq);
                first.to_balance = first.to_balance.max(later.to_balance);
            }
            same
        });
        placed
    }

    /// The ops the last run applied a second time.
    pub(crate) fn reapplied(&self) -> Vec<u32> {
        self.frames
            .iter()
            .filter_map(|f| f.chosen)
            .map(|(c, _, _)| self.cands[c as usize])
            .filter(|c| c.reapply)
            .map(|c| c.op)
            .collect()
    }

    /// How many candidates of unknown outcome real time allows in `gap`.
    pub(crate) fn count_for(&self, gap: &Gap) -> usize {
        self.count_where(gap, false)
    }

    /// How many second applications of duplicated ops real time allows in `gap`.
    pub(crate) fn reapplies_for(&self, gap: &Gap) -> usize {
        self.count_where(gap, true)
    }

    fn count_where(&self, gap: &Gap, reapply: bool) -> usize {
        let last = gap.last_seq();
        self.lists.get(gap.account as usize).map_or(0, |l| {
            l.iter()
                .map(|&c| &self.cands[c as usize])
                .filter(|c| c.reapply == reapply && c.floor(gap.account) < last)
                .count()
        })
    }
}

/// Each account's range in `gaps` (sorted by account).
fn account_ranges(gaps: &[Gap], accounts: usize) -> Vec<(usize, usize)> {
    let mut ranges = vec![(0, 0); accounts];
    let mut i = 0;
    while i < gaps.len() {
        let a = gaps[i].account;
        let end = i + gaps[i..].partition_point(|g| g.account == a);
        if let Some(r) = ranges.get_mut(a as usize) {
            *r = (i, end);
        }
        i = end;
    }
    ranges
}

/// The window of the missing number `offset` of `gap`.
fn slot_window(gap: &Gap, offset: u64, slot_windows: &[(u64, u64)]) -> (u64, u64) {
    if gap.slot_windows == NO_SLOT_WINDOWS {
        return gap.window_ns;
    }
    let i = u64::from(gap.slot_windows).saturating_add(offset);
    usize::try_from(i)
        .ok()
        .and_then(|i| slot_windows.get(i))
        .map_or(gap.window_ns, |&(lo, hi)| {
            (lo.max(gap.window_ns.0), hi.min(gap.window_ns.1))
        })
}

/// Every missing number of `gaps`, ordered by when it can have been filled
/// (its window's start), each account's in sequence order. A number's
/// window is its own where the gap has them, else the gap's.
fn slots_in_time_order(gaps: &[Gap], slot_windows: &[(u64, u64)]) -> Vec<Slot> {
    let mut slots = Vec::new();
    for (g, gap) in gaps.iter().enumerate() {
        for offset in 0..gap.missing {
            slots.push(Slot {
                gap: g as u32,
                account: gap.account,
                seq: gap.first_seq.saturating_add(offset),
                prev: NO_FRAME,
                next: NO_FRAME,
                last: offset + 1 == gap.missing,
                window_ns: slot_window(gap, offset, slot_windows),
            });
        }
    }
    slots.sort_by_key(|s| (s.window_ns.0, s.account, s.seq));
    let mut last_of_gap = vec![NO_FRAME; gaps.len()];
    for k in 0..slots.len() {
        let prev = last_of_gap[slots[k].gap as usize];
        slots[k].prev = prev;
        if let Some(p) = slots.get_mut(prev as usize) {
            p.next = k as u32;
        }
        last_of_gap[slots[k].gap as usize] = k as u32;
    }
    slots
}
