//! Replays one account: walks its views in sequence order and checks that
//! each reported balance follows from the one before, that denials were
//! justified, and that real-time order is respected on the account. Missing
//! sequence numbers are collected as gaps for the exact search over the ops
//! of unknown outcome (`place`). After a mismatch it carries on from the
//! reported balance, so one lost update is one violation.

use crate::history::leg::{decode, Leg};
use crate::history::leg::{key_entry, key_seq};
use crate::history::{History, Outcome};
use crate::order::index::Index;
use crate::order::realtime::RealTime;
use crate::placement::gap::{Gap, NO_OWN_WINDOWS, NO_SLOT_WINDOWS};
use crate::report::describe::{self, Anchor, Origin};
use crate::report::{CheckStats, Sink, ViolationKind};

/// How far back (in sequence order) to look for the stale balance a lost
/// update acted on. Only bounds the explanation, never the detection.
const LOOKBACK: usize = 64;

/// The replay's state once every view of the account has been walked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AccountEnd {
    /// The replayed balance after the last sequence number seen.
    pub balance: i128,
    pub last_seq: u64,
    pub anchor: Anchor,
}

/// The replay of one account in progress.
struct Walk<'a> {
    h: &'a History,
    id: &'a str,
    keys: &'a [u64],
    sink: &'a mut Sink,
    initial: u64,
    balance: i128,
    last_seq: u64,
    anchor: Anchor,
    realtime: RealTime<'a>,
    account: u32,
    gaps: &'a mut Vec<Gap>,
}

/// Walks account `a` and returns where its replay ended.
pub(crate) fn walk_account(
    h: &History,
    index: &Index,
    a: usize,
    gaps: &mut Vec<Gap>,
    sink: &mut Sink,
    stats: &mut CheckStats,
) -> AccountEnd {
    let initial = h.accounts.get(a).map_or(0, |s| s.initial_balance);
    let anchor = Anchor {
        seq: 0,
        balance: i128::from(initial),
        origin: Origin::Initial,
    };
    let mut w = Walk {
        h,
        id: h.accounts.get(a).map_or("", |s| s.account_id.as_str()),
        keys: index.keys(a),
        sink,
        initial,
        balance: anchor.balance,
        last_seq: 0,
        anchor,
        realtime: RealTime::new(&h.processes),
        account: a as u32,
        gaps,
    };
    for pos in 0..w.keys.len() {
        w.step(pos);
    }
    stats.sequence_numbers_checked += w.keys.len() as u64;
    AccountEnd {
        balance: w.balance,
        last_seq: w.last_seq,
        anchor: w.anchor,
    }
}

impl Walk<'_> {
    /// Checks the view at sorted position `pos` against the replay so far.
    fn step(&mut self, pos: usize) {
        let Some(leg) = decode(self.h, key_entry(self.keys[pos])) else {
            return;
        };
        if leg.sequence <= self.last_seq {
            self.duplicate(pos, &leg);
            return;
        }
        if leg.sequence > self.last_seq + 1 {
            self.gap(&leg, key_entry(self.keys[pos]));
        }
        if let Some(earlier) = self.realtime.observe(pos, &leg) {
            self.real_time(earlier, &leg);
        }
        match leg.outcome {
            Outcome::Approved => self.approved(pos, &leg),
            _ => self.denied(&leg),
        }
        self.balance = i128::from(leg.balance);
        self.last_seq = leg.sequence;
    }

    /// Restarts the replay at `leg`'s reported balance after a mismatch.
    fn restart(&mut self, leg: &Leg) {
        self.anchor = Anchor {
            seq: leg.sequence,
            balance: i128::from(leg.balance),
            origin: Origin::Reported,
        };
    }

    /// A second view with a sequence number already taken.
    fn duplicate(&mut self, pos: usize, leg: &Leg) {
        let h = self.h;
        let first = pos
            .checked_sub(1)
            .and_then(|p| decode(h, key_entry(self.keys[p])));
        self.sink.report(ViolationKind::DuplicateSequence, self.id, || {
            let first = first.map_or("another op".to_owned(), |f| describe::op_label(h, &f));
            format!(
                "{} and {first} both took seq {} (duplicate sequence)",
                describe::op_label(h, leg),
                leg.sequence
            )
        });
    }

    /// Missing sequence numbers before `leg`: a gap for the exact search to
    /// fill with ops of unknown outcome. The replay goes on from the balance
    /// `leg` implies it saw.
    fn gap(&mut self, leg: &Leg, entry: u32) {
        let before = leg.implied_before();
        self.gaps.push(Gap {
            account: self.account,
            first_seq: self.last_seq + 1,
            missing: leg.sequence - self.last_seq - 1,
            before: self.balance,
            after: before,
            next: Some(entry),
            window_ns: (0, u64::MAX),
            slot_windows: NO_SLOT_WINDOWS,
            own_windows: NO_OWN_WINDOWS,
        });
        self.anchor = Anchor {
            seq: leg.sequence - 1,
            balance: before,
            origin: Origin::Gap,
        };
        self.balance = before;
    }

    /// An approved op: its reported balance must be the replayed one plus or
    /// minus its amount. A mismatch is a lost update when the op evidently
    /// acted on an older balance, an overdraft when it took more than the
    /// account held, and a lost update otherwise.
    fn approved(&mut self, pos: usize, leg: &Leg) {
        let expected = self.balance + leg.change();
        if expected == i128::from(leg.balance) {
            return;
        }
        if self.settled_late(leg, expected) {
            return;
        }
        let stale = self.stale_base(pos, leg);
        let short = !leg.is_credit() && self.balance < i128::from(leg.amount);
        let (h, keys, anchor, before) = (self.h, self.keys, self.anchor, self.balance);
        if stale.is_none() && short {
            self.sink.report(ViolationKind::Overdraft, self.id, || {
                let how = describe::replay(&anchor, leg.sequence - 1, before);
                format!(
                    "{} was approved, but the balance before it was only {before} ({how}); it reported balance {} (overdraft)",
                    describe::at_seq(h, leg),
                    leg.balance
                )
            });
        } else {
            self.sink.report(ViolationKind::LostUpdate, self.id, || {
                let how = describe::replay(&anchor, leg.sequence, expected);
                let why = stale.map_or(String::new(), |s| stale_reason(h, keys, pos, s, leg));
                let at = describe::at_seq(h, leg);
                format!(
                    "{at} reported balance {}, but {how}{why} (lost update)",
                    leg.balance
                )
            });
        }
        self.restart(leg);
    }

    /// A denied op: the balance must not change, and the amount must exceed it.
    fn denied(&mut self, leg: &Leg) {
        let before = self.balance;
        let covered = !leg.is_credit() && before >= i128::from(leg.amount);
        let same = before == i128::from(leg.balance);
        if !covered && same {
            return;
        }
        if !covered && self.settled_late(leg, before) {
            return;
        }
        let (h, anchor) = (self.h, self.anchor);
        let how = move || describe::replay(&anchor, leg.sequence - 1, before);
        if covered {
            self.sink.report(ViolationKind::UnjustifiedDenial, self.id, || {
                format!(
                    "{} was denied for insufficient funds, but the balance before it was {before} ({}), which covers it (unjustified denial)",
                    describe::at_seq(h, leg),
                    how()
                )
            });
        } else {
            self.sink.report(ViolationKind::LostUpdate, self.id, || {
                format!(
                    "{} was denied, so the balance should have stayed {before} ({}), but it reported {} (lost update)",
                    describe::at_seq(h, leg),
                    how(),
                    leg.balance
                )
            });
        }
        self.restart(leg);
    }

    /// A mismatch at an op whose call failed and whose answer came from
    /// GetOperation: the failed call changed the balance by something other
    /// than what its stored result says (e.g. part of the amount). Reported
    /// as such; true when it was.
    fn settled_late(&mut self, leg: &Leg, expected: i128) -> bool {
        let resolved = self.h.ops.get(leg.op as usize).is_some_and(|o| o.resolved);
        if !resolved {
            return false;
        }
        let (h, anchor, before) = (self.h, self.anchor, self.balance);
        self.sink.report(ViolationKind::UnexplainedChange, self.id, || {
            let how = describe::replay(&anchor, leg.sequence - 1, before);
            format!(
                "{} failed and GetOperation later reported it {}, so the balance should be {expected} after it ({how}), but it was {}: the failed call changed the balance by something else (unexplained change)",
                describe::at_seq(h, leg),
                describe::outcome(leg.outcome),
                leg.balance
            )
        });
        self.restart(leg);
        true
    }

    /// Looks back a bounded distance for the balance a mismatched op acted
    /// on: `Some(Some(q))` for the balance left by the view at position `q`,
    /// `Some(None)` for the initial balance, `None` if none fits.
    fn stale_base(&self, pos: usize, leg: &Leg) -> Option<Option<usize>> {
        let target = leg.implied_before();
        if target == self.balance {
            return None;
        }
        let from = pos.saturating_sub(LOOKBACK);
        for q in (from..pos).rev() {
            let earlier = decode(self.h, key_entry(self.keys[q]))?;
            if i128::from(earlier.balance) == target {
                return Some(Some(q));
            }
        }
        (from == 0 && i128::from(self.initial) == target).then_some(None)
    }

    /// An op with a lower sequence number was sent after `leg` got its reply.
    fn real_time(&mut self, earlier: usize, leg: &Leg) {
        let h = self.h;
        let Some(late) = decode(h, key_entry(self.keys[earlier])) else {
            return;
        };
        // Two ops of one process: their times on its own clock, unwidened.
        let p = &h.processes;
        let own = match p.of_op(leg.op) == p.of_op(late.op) {
            true => p.widened_ns,
            false => 0,
        };
        self.sink.report(ViolationKind::RealTimeOrder, self.id, || {
            format!(
                "{} got its reply at {} ns, before {} was sent at {} ns, yet it took the later sequence number (real-time order)",
                describe::at_seq(h, leg),
                leg.recv_ns.saturating_sub(own),
                describe::at_seq(h, &late),
                late.send_ns.saturating_add(own)
            )
        });
    }
}

/// Names the ops a stale op overwrote: those between the balance it acted
/// on (left by position `base`, or the initial balance) and itself.
fn stale_reason(h: &History, keys: &[u64], pos: usize, base: Option<usize>, leg: &Leg) -> String {
    let first = base.map_or(0, |q| q + 1);
    if first >= pos {
        return String::new();
    }
    let acted_on = match base.and_then(|q| decode(h, key_entry(keys[q]))) {
        Some(b) => format!("the balance {} left by seq {}", b.balance, b.sequence),
        None => format!("the initial balance {}", leg.implied_before()),
    };
    let lost = describe::list(h, keys, first, pos);
    let first_seq = keys.get(first).map_or(0, |k| key_seq(*k));
    let last_seq = keys.get(pos.saturating_sub(1)).map_or(0, |k| key_seq(*k));
    let range = describe::seq_range(first_seq, last_seq);
    let verb = if pos - first == 1 { "was" } else { "were" };
    format!(": it acted on {acted_on}, so {range} ({lost}) {verb} lost")
}
