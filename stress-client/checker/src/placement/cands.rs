//! The ops that may fill sequence gaps, and the real-time bounds on where:
//! every op of unknown outcome, plus the second application of every
//! approved op sent twice (only ever used to name a `double_apply`). Each
//! gets a floor per account (the highest sequence number answered, by an op
//! or seen by a read, before it was sent), and each gap a window (when its
//! ops can have taken effect, reads included).

use crate::history::leg::find_leg;
use crate::history::{History, Kind, Outcome};
use crate::order::index::{Index, LegCursor};
use crate::order::timeline::{reads_by_account, Timeline};
use crate::placement::gap::{Gap, NO_SLOT_WINDOWS};
use crate::placement::own::{OwnTimes, OwnWindows};

/// The account field of a candidate without a second leg.
pub(crate) const NONE: u32 = u32::MAX;

/// An op that may fill missing sequence numbers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cand {
    pub op: u32,
    pub kind: Kind,
    pub amount: u64,
    pub from: u32,
    /// A transfer's target, or [`NONE`].
    pub to: u32,
    pub send_ns: u64,
    /// It may only take a sequence number above these (real time).
    pub floor_from: u64,
    pub floor_to: u64,
    /// The second application of a duplicated op: never part of a passing
    /// placement, only tried to explain a gap as a double application.
    pub reapply: bool,
}

impl Cand {
    /// The account on the other side of a transfer, seen from `a`.
    pub(crate) fn other(&self, a: u32) -> Option<u32> {
        let other = if a == self.from { self.to } else { self.from };
        (other != NONE).then_some(other)
    }

    /// The floor on account `a`.
    pub(crate) fn floor(&self, a: u32) -> u64 {
        if a == self.from {
            self.floor_from
        } else {
            self.floor_to
        }
    }

    /// True when the op puts money into account `a` if approved.
    pub(crate) fn credits(&self, a: u32) -> bool {
        self.kind == Kind::Deposit || (self.kind == Kind::Transfer && a == self.to)
    }
}

/// The candidates for `gaps` (none without gaps); their floors are set by
/// [`set_windows_and_floors`].
pub(crate) fn candidates(h: &History, gaps: &[Gap]) -> Vec<Cand> {
    if gaps.is_empty() {
        return Vec::new();
    }
    let mut cands = Vec::new();
    let mut legs = LegCursor::default();
    for (i, op) in h.ops.iter().enumerate() {
        let leg = legs.leg_for(h, i);
        let broken =
            (op.account as usize) >= h.accounts.len() || (op.kind == Kind::Transfer && leg.is_none());
        if broken || !op.outcome.is_open() {
            continue;
        }
        let to = leg
            .and_then(|t| h.transfers.get(t))
            .map_or(NONE, |l| l.to_account);
        cands.push(cand(
            i as u32,
            op.kind,
            op.amount,
            (op.account, to),
            op.send_ns,
            false,
        ));
    }
    cands.extend(second_applications(h));
    cands
}

/// The second application of every approved op sent twice, possible from
/// the moment either copy was sent.
fn second_applications(h: &History) -> impl Iterator<Item = Cand> + '_ {
    h.duplicates.iter().filter_map(move |d| {
        let op = h.ops.get(d.op as usize)?;
        if op.outcome != Outcome::Approved || (op.account as usize) >= h.accounts.len() {
            return None;
        }
        let to = find_leg(h, d.op as usize).map_or(NONE, |l| l.to_account);
        if op.kind == Kind::Transfer && to == NONE {
            return None;
        }
        let send_ns = d.send_ns.min(op.send_ns);
        Some(cand(d.op, op.kind, op.amount, (op.account, to), send_ns, true))
    })
}

fn cand(op: u32, kind: Kind, amount: u64, (from, to): (u32, u32), send_ns: u64, reapply: bool) -> Cand {
    Cand {
        op,
        kind,
        amount,
        from,
        to,
        send_ns,
        floor_from: 0,
        floor_to: 0,
        reapply,
    }
}

/// Gaps this long or shorter get a window per missing number.
const SLOT_WINDOWS_MAX: u64 = 64;

/// Sets every gap's window and each candidate's floor on each of its
/// accounts from that account's timeline (reads included), built once per
/// account for both. Returns the windows of each missing number of the gaps
/// up to [`SLOT_WINDOWS_MAX`] long, where `Gap::slot_windows` points: a read
/// inside a gap saw some of its numbers, so those took effect before it was
/// answered and the others after it was sent. In a merged history the
/// floors and the gaps' windows on each process's own clock (`own`) are set
/// too; the latter are returned second.
pub(crate) fn set_windows_and_floors(
    h: &History,
    index: &Index,
    gaps: &mut [Gap],
    cands: &mut [Cand],
) -> (Vec<(u64, u64)>, OwnWindows) {
    let mut slot_windows = Vec::new();
    let mut own_windows = OwnWindows::new(h);
    if gaps.is_empty() && cands.is_empty() {
        return (slot_windows, own_windows);
    }
    let by_account = cands_by_account(cands);
    let (reads, ranges) = reads_by_account(h);
    let (mut g, mut c) = (0, 0);
    // Gaps come sorted by account, as do the candidates' accounts; were they
    // not, an account's timeline would only be built more than once.
    loop {
        let next_gap = gaps.get(g).map(|gap| gap.account);
        let next_cand = by_account.get(c).map(|&(a, _, _)| a);
        let Some(a) = next_gap.into_iter().chain(next_cand).min() else {
            break;
        };
        let mine = ranges.get(a as usize).map_or(&[][..], |r| &reads[r.clone()]);
        let t = Timeline::build_with_reads(h, index, a as usize, mine);
        let own = OwnTimes::build(h, index, a as usize, mine, &mut own_windows);
        while let Some(gap) = gaps.get_mut(g).filter(|gap| gap.account == a) {
            set_window(gap, &t, &mut slot_windows);
            own.set_windows(gap, &mut own_windows);
            g += 1;
        }
        while let Some(&(_, i, source)) = by_account.get(c).filter(|&&(ca, _, _)| ca == a) {
            let cand = &mut cands[i as usize];
            let floor = t
                .answered_before(cand.send_ns)
                .max(own.floor(h, (cand.op, cand.send_ns)));
            match source {
                true => cand.floor_from = floor,
                false => cand.floor_to = floor,
            }
            c += 1;
        }
    }
    let sent: Vec<(u32, u64)> = cands.iter().map(|c| (c.op, c.send_ns)).collect();
    own_windows.set_cand_bounds(h, &sent);
    (slot_windows, own_windows)
}

/// Each candidate's accounts: (account, candidate, true for its source),
/// sorted by account.
fn cands_by_account(cands: &[Cand]) -> Vec<(u32, u32, bool)> {
    let mut by_account: Vec<(u32, u32, bool)> = Vec::with_capacity(cands.len() * 2);
    for (i, c) in cands.iter().enumerate() {
        by_account.push((c.from, i as u32, true));
        if c.to != NONE {
            by_account.push((c.to, i as u32, false));
        }
    }
    by_account.sort_unstable();
    by_account
}

/// Sets `g`'s window from its account's timeline `t`, and the windows of its
/// missing numbers when it is short enough.
fn set_window(g: &mut Gap, t: &Timeline, slot_windows: &mut Vec<(u64, u64)>) {
    g.window_ns = t.window(g.first_seq, g.last_seq());
    g.slot_windows = NO_SLOT_WINDOWS;
    let start = u32::try_from(slot_windows.len()).unwrap_or(NO_SLOT_WINDOWS);
    if g.missing > 1 && g.missing <= SLOT_WINDOWS_MAX && start != NO_SLOT_WINDOWS {
        g.slot_windows = start;
        slot_windows.extend((g.first_seq..=g.last_seq()).map(|x| t.window(x, x)));
    }
}

/// True when an op sent at `send_ns` can have taken effect inside both
/// windows at once (bounds inclusive: clocks tick in whole nanoseconds).
pub(crate) fn meets(a: (u64, u64), b: (u64, u64), send_ns: u64) -> bool {
    a.0.max(b.0).max(send_ns) <= a.1.min(b.1)
}
