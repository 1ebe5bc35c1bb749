//! Real time on one account, as sequence numbers: "the highest sequence
//! number among the ops answered before t" (nothing sent later may take a
//! lower one) and "the lowest among the ops sent after t" (nothing answered
//! earlier may have seen it). Built per account from its sequence-sorted
//! views with a suffix minimum of reply times and a prefix maximum of send
//! times, both monotone, so each question is one binary search.
//!
//! For the exact search the timeline also holds the account's reads: a read
//! that saw sequence `s` sits between the ops `s` and `s + 1` (keys are
//! `2s` for an op, `2s + 1` for a read), so an op of unknown outcome sent
//! after a read was answered cannot take a number that read saw, and a gap's
//! ops took effect after every read that missed them was sent and before
//! every read that saw them was answered.

use crate::history::leg::decode;
use crate::history::leg::{key_entry, key_seq};
use crate::history::{History, Read};
use crate::order::index::Index;

/// The answers for one account. Only views of ops whose outcome is known
/// count: an op of unknown outcome has no reply, and where the search placed
/// it is a choice, not an observation.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    /// `2 * sequence` for an op, `2 * sequence + 1` for a read, ascending.
    seqs: Vec<u64>,
    /// `min(recv)` over this position and every later one.
    recv_min_after: Vec<u64>,
    /// `max(send)` over this position and every earlier one.
    send_max_before: Vec<u64>,
}

impl Timeline {
    /// The timeline of account `a`.
    pub(crate) fn build(h: &History, index: &Index, a: usize) -> Timeline {
        Timeline::build_with_reads(h, index, a, &[])
    }

    /// The timeline of account `a` with its `reads` (ids into
    /// [`History::reads`] of answered reads of `a`, sorted by sequence).
    pub(crate) fn build_with_reads(h: &History, index: &Index, a: usize, reads: &[u32]) -> Timeline {
        let mut t = Timeline::default();
        let mut reads = reads.iter().map(|&r| &h.reads[r as usize]).peekable();
        for &k in index.keys(a) {
            let Some(leg) = decode(h, key_entry(k)) else {
                continue;
            };
            if leg.outcome.is_open() {
                continue;
            }
            while let Some(r) = reads.next_if(|r| r.sequence < key_seq(k)) {
                t.push(read_key(r), r.send_ns, r.recv_ns);
            }
            t.push(key_seq(k).saturating_mul(2), leg.send_ns, leg.recv_ns);
        }
        for r in reads {
            t.push(read_key(r), r.send_ns, r.recv_ns);
        }
        t.finish()
    }

    /// Account `a`'s timeline of each process of a merged history: process
    /// `k`'s holds only the ops it sent (its times share one clock).
    pub(crate) fn build_per_process(h: &History, index: &Index, a: usize) -> Vec<Timeline> {
        Timeline::build_per_process_seeing(h, index, a, &[], |_| {})
    }

    /// As [`Timeline::build_per_process`], with the `reads` of `a` (sorted
    /// by sequence, as for [`Timeline::build_with_reads`]) in the timeline
    /// of the process that sent each (a read tied to no process is left
    /// out), showing `see` each op and read as it goes (in key order).
    pub(crate) fn build_per_process_seeing(
        h: &History,
        index: &Index,
        a: usize,
        reads: &[u32],
        mut see: impl FnMut(&OwnView),
    ) -> Vec<Timeline> {
        let mut per: Vec<Timeline> = (0..h.processes.count()).map(|_| Timeline::default()).collect();
        visit_per_process(h, index, a, reads, |v| {
            if let Some(t) = per.get_mut(v.process) {
                t.push(v.key, v.send_ns, v.recv_ns);
            }
            see(&v);
        });
        per.into_iter().map(Timeline::finish).collect()
    }

    /// Appends the next position (keys come in ascending order).
    fn push(&mut self, key: u64, send: u64, recv: u64) {
        let latest_send = self.send_max_before.last().map_or(send, |&s| s.max(send));
        self.seqs.push(key);
        self.recv_min_after.push(recv.max(send));
        self.send_max_before.push(latest_send);
    }

    /// Turns the replies into their suffix minimum.
    fn finish(mut self) -> Timeline {
        for i in (0..self.recv_min_after.len().saturating_sub(1)).rev() {
            self.recv_min_after[i] = self.recv_min_after[i].min(self.recv_min_after[i + 1]);
        }
        self
    }

    /// The highest sequence number among ops answered strictly before `t_ns`
    /// (0 when none was).
    pub(crate) fn answered_before(&self, t_ns: u64) -> u64 {
        let n = self.recv_min_after.partition_point(|&r| r < t_ns);
        n.checked_sub(1).map_or(0, |i| self.seqs[i] / 2)
    }

    /// The lowest sequence number among ops sent strictly after `t_ns`.
    pub(crate) fn sent_after(&self, t_ns: u64) -> Option<u64> {
        let i = self.send_max_before.partition_point(|&s| s <= t_ns);
        self.seqs.get(i).map(|&k| k / 2)
    }
}

impl Timeline {
    /// When ops at sequence numbers `first..=last` can have taken effect:
    /// after every earlier op was sent, before every later op was answered.
    pub(crate) fn window(&self, first: u64, last: u64) -> (u64, u64) {
        let before = self.seqs.partition_point(|&k| k < first.saturating_mul(2));
        let after = self.seqs.partition_point(|&k| k <= last.saturating_mul(2));
        let lo = before.checked_sub(1).map_or(0, |i| self.send_max_before[i]);
        let hi = self.recv_min_after.get(after).copied().unwrap_or(u64::MAX);
        (lo, hi)
    }
}

/// One answered op or read of an account, with its process, in key order.
pub(crate) struct OwnView {
    pub process: usize,
    /// As [`Timeline`]'s keys: `2s` for an op, `2s + 1` for a read.
    pub key: u64,
    pub send_ns: u64,
    pub recv_ns: u64,
    /// The op (`None`: a read).
    pub op: Option<u32>,
}

/// Visits account `a`'s ops of known outcome and its `reads` (sorted by
/// sequence) tied to a process, in key order.
fn visit_per_process(h: &History, index: &Index, a: usize, reads: &[u32], mut visit: impl FnMut(OwnView)) {
    let read_view = |r: u32| {
        let read = &h.reads[r as usize];
        h.processes.of_read(r).map(|process| OwnView {
            process,
            key: read_key(read),
            send_ns: read.send_ns,
            recv_ns: read.recv_ns,
            op: None,
        })
    };
    let mut reads = reads.iter().copied().peekable();
    for &k in index.keys(a) {
        let Some(leg) = decode(h, key_entry(k)).filter(|l| !l.outcome.is_open()) else {
            continue;
        };
        while let Some(r) = reads.next_if(|&r| h.reads[r as usize].sequence < key_seq(k)) {
            read_view(r).into_iter().for_each(&mut visit);
        }
        visit(OwnView {
            process: h.processes.of_op(leg.op),
            key: key_seq(k).saturating_mul(2),
            send_ns: leg.send_ns,
            recv_ns: leg.recv_ns,
            op: Some(leg.op),
        });
    }
    reads.filter_map(read_view).for_each(visit);
}

/// A read's key: right after the op whose sequence it saw.
fn read_key(r: &Read) -> u64 {
    r.sequence.saturating_mul(2).saturating_add(1)
}

/// The answered reads of each account, sorted by (account, sequence), and
/// each account's range in them: what [`Timeline::build_with_reads`] takes.
pub(crate) fn reads_by_account(h: &History) -> (Vec<u32>, Vec<std::ops::Range<usize>>) {
    let mut ids: Vec<u32> = (0..h.reads.len() as u32)
        .filter(|&r| {
            let read = &h.reads[r as usize];
            !read.not_found && (read.account as usize) < h.accounts.len()
        })
        .collect();
    ids.sort_unstable_by_key(|&r| (h.reads[r as usize].account, h.reads[r as usize].sequence));
    let mut ranges = Vec::with_capacity(h.accounts.len());
    let mut start = 0;
    for a in 0..h.accounts.len() as u32 {
        let end = start + ids[start..].partition_point(|&r| h.reads[r as usize].account <= a);
        ranges.push(start..end);
        start = end;
    }
    (ids, ranges)
}
