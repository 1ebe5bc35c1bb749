//! Real time on one account, as sequence numbers: "the highest sequence
//! number among the ops answered before t" (nothing sent later may take a
//! lower one) and "the lowest among the ops sent after t" (nothing answered
//! earlier may have seen it). Built per account from its sequence-sorted
//! views with a suffix minimum of reply times and a prefix maximum of send
//! times, both monotone, so each question is one binary search.

use crate::history::History;
use crate::index::{key_entry, key_seq, Index};
use crate::leg::decode;

/// The answers for one account. Only views of ops whose outcome is known
/// count: an op of unknown outcome has no reply, and where the search placed
/// it is a choice, not an observation.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    seqs: Vec<u64>,
    /// `min(recv)` over this position and every later one.
    recv_min_after: Vec<u64>,
    /// `max(send)` over this position and every earlier one.
    send_max_before: Vec<u64>,
}

impl Timeline {
    /// The timeline of account `a`.
    pub(crate) fn build(h: &History, index: &Index, a: usize) -> Timeline {
        let keys = index.keys(a);
        let mut t = Timeline::default();
        let mut latest_send = 0;
        for &k in keys {
            let Some(leg) = decode(h, key_entry(k)) else {
                continue;
            };
            if leg.outcome.is_open() {
                continue;
            }
            latest_send = latest_send.max(leg.send_ns);
            t.seqs.push(key_seq(k));
            t.recv_min_after.push(leg.recv_ns);
            t.send_max_before.push(latest_send);
        }
        for i in (0..t.recv_min_after.len().saturating_sub(1)).rev() {
            t.recv_min_after[i] = t.recv_min_after[i].min(t.recv_min_after[i + 1]);
        }
        t
    }

    /// The highest sequence number among ops answered strictly before `t_ns`
    /// (0 when none was).
    pub(crate) fn answered_before(&self, t_ns: u64) -> u64 {
        let n = self.recv_min_after.partition_point(|&r| r < t_ns);
        n.checked_sub(1).map_or(0, |i| self.seqs[i])
    }

    /// The lowest sequence number among ops sent strictly after `t_ns`.
    pub(crate) fn sent_after(&self, t_ns: u64) -> Option<u64> {
        let i = self.send_max_before.partition_point(|&s| s <= t_ns);
        self.seqs.get(i).copied()
    }
}

impl Timeline {
    /// When ops at sequence numbers `first..=last` can have taken effect:
    /// after every earlier op was sent, before every later op was answered.
    pub(crate) fn window(&self, first: u64, last: u64) -> (u64, u64) {
        let before = self.seqs.partition_point(|&s| s < first);
        let after = self.seqs.partition_point(|&s| s <= last);
        let lo = before.checked_sub(1).map_or(0, |i| self.send_max_before[i]);
        let hi = self.recv_min_after.get(after).copied().unwrap_or(u64::MAX);
        (lo, hi)
    }
}
