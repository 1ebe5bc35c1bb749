//! Real-time order on one account: if op A's reply arrived before op B was
//! sent, A must have the lower sequence number. Checked in one linear sweep
//! over the sequence-sorted views, so the whole check stays O(n log n).

use crate::history::leg::Leg;

/// The sweep's state. Visiting views in increasing sequence order, it keeps
/// the latest send time among the views already seen (all of which have a
/// lower sequence number). The current view violates real-time order exactly
/// when its reply arrived before that send: the mirror image of keeping the
/// earliest reply among higher sequence numbers, and equally linear.
#[derive(Debug, Default)]
pub(crate) struct RealTime {
    /// The latest send time seen so far, and the sorted position of its view.
    latest: Option<(u64, usize)>,
    /// The position last blamed, so one late op yields one violation rather
    /// than one per op that finished before it was sent.
    blamed: Option<usize>,
}

impl RealTime {
    /// Visits the view at `pos`. Returns the position of an earlier-sequenced
    /// view that was sent after `leg`'s reply arrived, if there is one not
    /// yet blamed. Views without a reply (`recv_ns == u64::MAX`) never
    /// precede anything, which the comparison gives for free.
    pub(crate) fn observe(&mut self, pos: usize, leg: &Leg) -> Option<usize> {
        let hit = self
            .latest
            .filter(|&(send, p)| leg.recv_ns < send && self.blamed != Some(p))
            .map(|(_, p)| p);
        if hit.is_some() {
            self.blamed = hit;
        }
        if self.latest.is_none_or(|(send, _)| leg.send_ns > send) {
            self.latest = Some((leg.send_ns, pos));
        }
        hit
    }
}
