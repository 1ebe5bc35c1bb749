//! Reads as nodes of the one order. A GetBalance answer (balance, sequence
//! `s`) on account A sits right after A's op with sequence `s` and before
//! the next: it saw exactly the ops before it. Reads that saw the same `s`
//! form a group between two consecutive ops of A, unordered among
//! themselves (real time orders them, like any other nodes). The next op of
//! A waits for the whole group; the group waits for the op before it.
//!
//! Only reads of an existing account that answered (not NOT_FOUND) are
//! nodes. Kept apart from `global` so the op sweep stays readable. Reads
//! cost O(r log r) to build; an account's views finish in sequence order,
//! so the sweep finds the group after each view with one cursor per
//! account, O(1) amortised.

use std::ops::Range;

use crate::history::History;
use crate::order::index::Index;

/// A read id (index into [`History::reads`]) that is not a node.
const NOT_NODE: u32 = u32::MAX;

/// The read nodes, grouped by (account, slot).
#[derive(Debug, Default)]
pub(crate) struct ReadNodes {
    /// Read ids that are nodes, sorted by (account, slot).
    sorted: Vec<u32>,
    /// (account, slot) of each sorted position.
    at: Vec<(u32, u32)>,
    /// Per read id: the sorted position of its group's first read.
    group: Vec<u32>,
    /// Per read id: its slot, the number of its account's views with a
    /// sequence no higher than the one it saw.
    slot: Vec<u32>,
    /// Per sorted position (used at a group's first): reads not yet done.
    left: Vec<u32>,
    /// Per account: true when some read of it is a node.
    has_reads: Vec<bool>,
    /// Per account: the sorted position from which the sweep looks for the
    /// next group (its views finish in sequence order).
    cursor: Vec<u32>,
}

impl ReadNodes {
    /// The read nodes of `h` against the views in `index`.
    pub(crate) fn build(h: &History, index: &Index) -> ReadNodes {
        let n = h.reads.len();
        let mut g = ReadNodes {
            group: vec![NOT_NODE; n],
            slot: vec![0; n],
            has_reads: vec![false; h.accounts.len()],
            ..ReadNodes::default()
        };
        for (r, read) in h.reads.iter().enumerate() {
            let a = read.account as usize;
            if a >= h.accounts.len() || read.not_found {
                continue;
            }
            let slot = index.position(a, read.sequence.saturating_add(1));
            g.slot[r] = u32::try_from(slot).unwrap_or(u32::MAX);
            g.sorted.push(r as u32);
            g.has_reads[a] = true;
        }
        g.sorted
            .sort_unstable_by_key(|&r| (h.reads[r as usize].account, g.slot[r as usize]));
        g.at = g
            .sorted
            .iter()
            .map(|&r| (h.reads[r as usize].account, g.slot[r as usize]))
            .collect();
        g.left = vec![0; g.sorted.len()];
        g.cursor = (0..h.accounts.len() as u32)
            .map(|a| g.at.partition_point(|&k| k.0 < a) as u32)
            .collect();
        let mut start = 0;
        for p in 0..g.sorted.len() {
            if g.at[p] != g.at[start] {
                start = p;
            }
            g.group[g.sorted[p] as usize] = start as u32;
            g.left[start] += 1;
        }
        g
    }

    /// The read ids that are nodes.
    pub(crate) fn nodes(&self) -> &[u32] {
        &self.sorted
    }

    /// Read `r`'s slot on its account.
    pub(crate) fn slot(&self, r: u32) -> usize {
        self.slot.get(r as usize).copied().unwrap_or(0) as usize
    }

    /// The sorted positions of the reads between account `a`'s views at
    /// `slot - 1` and `slot` (empty when there are none).
    pub(crate) fn group_at(&self, a: usize, slot: usize) -> Range<usize> {
        if !self.has_reads.get(a).copied().unwrap_or(false) {
            return 0..0;
        }
        let key = (a as u32, u32::try_from(slot).unwrap_or(u32::MAX));
        let start = self.at.partition_point(|&k| k < key);
        let end = start + self.at[start..].partition_point(|&k| k == key);
        start..end
    }

    /// As [`ReadNodes::group_at`], for a sweep that asks about each
    /// account's slots in increasing order: one cursor per account.
    pub(crate) fn next_group(&mut self, a: usize, slot: usize) -> Range<usize> {
        if !self.has_reads.get(a).copied().unwrap_or(false) {
            return 0..0;
        }
        let key = (a as u32, u32::try_from(slot).unwrap_or(u32::MAX));
        let mut c = self.cursor[a] as usize;
        while self.at.get(c).is_some_and(|&k| k < key) {
            c += 1;
        }
        self.cursor[a] = c as u32;
        let end = c + self.at[c..].iter().take_while(|&&k| k == key).count();
        c..end
    }

    /// The read id at sorted position `p`.
    pub(crate) fn read_at(&self, p: usize) -> u32 {
        self.sorted[p]
    }

    /// Reads of the group at `range` not yet done.
    pub(crate) fn left_in(&self, range: &Range<usize>) -> u32 {
        self.left.get(range.start).copied().unwrap_or(0)
    }

    /// Read `r` is done; true when it was the last of its group.
    pub(crate) fn done(&mut self, r: u32) -> bool {
        let Some(&g) = self.group.get(r as usize).filter(|&&g| g != NOT_NODE) else {
            return false;
        };
        let left = &mut self.left[g as usize];
        *left = left.saturating_sub(1);
        *left == 0
    }
}
