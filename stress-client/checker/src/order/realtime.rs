//! Real-time order on one account: if op A's reply arrived before op B was
//! sent, A must have the lower sequence number. Checked in one linear sweep
//! over the sequence-sorted views, so the whole check stays O(n log n).
//! In a merged history (several processes, see [`Processes`]) the widened
//! times order ops of different processes; two ops of one process are
//! ordered exactly, on their own clock, by a second sweep per process.

use crate::history::leg::Leg;
use crate::history::Processes;

/// The sweep's state. Visiting views in increasing sequence order, it keeps
/// the latest send time among the views already seen (all of which have a
/// lower sequence number). The current view violates real-time order exactly
/// when its reply arrived before that send: the mirror image of keeping the
/// earliest reply among higher sequence numbers, and equally linear.
#[derive(Debug)]
pub(crate) struct RealTime<'a> {
    /// The latest send time seen so far, and the sorted position of its view.
    latest: Option<(u64, usize)>,
    /// The position last blamed, so one late op yields one violation rather
    /// than one per op that finished before it was sent.
    blamed: Option<usize>,
    processes: &'a Processes,
    /// Merged histories only: the latest send of each process's views so far.
    own: Vec<Option<(u64, usize)>>,
}

impl<'a> RealTime<'a> {
    /// A sweep over one account of a history with these processes.
    pub(crate) fn new(processes: &'a Processes) -> Self {
        let own = match processes.count() {
            1 => Vec::new(),
            n => vec![None; n],
        };
        RealTime {
            latest: None,
            blamed: None,
            processes,
            own,
        }
    }

    /// Visits the view at `pos`. Returns the position of an earlier-sequenced
    /// view that was sent after `leg`'s reply arrived, if there is one not
    /// yet blamed. Views without a reply (`recv_ns == u64::MAX`) never
    /// precede anything, which the comparison gives for free.
    pub(crate) fn observe(&mut self, pos: usize, leg: &Leg) -> Option<usize> {
        let blamed = self.blamed;
        let mut hit = self
            .latest
            .filter(|&(send, p)| leg.recv_ns < send && blamed != Some(p))
            .map(|(_, p)| p);
        if !self.own.is_empty() {
            let slack = self.processes.same_process_slack_ns();
            let own = &mut self.own[self.processes.of_op(leg.op)];
            // On one clock: A's answer before B's send, widening taken off.
            let late = own.filter(|&(send, p)| leg.recv_ns < send.saturating_add(slack) && blamed != Some(p));
            hit = hit.or(late.map(|(_, p)| p));
            if own.is_none_or(|(send, _)| leg.send_ns > send) {
                *own = Some((leg.send_ns, pos));
            }
        }
        if hit.is_some() {
            self.blamed = hit;
        }
        if self.latest.is_none_or(|(send, _)| leg.send_ns > send) {
            self.latest = Some((leg.send_ns, pos));
        }
        hit
    }
}
