//! Kinds say what is known. A sequence gap that the second application of a
//! duplicated op explains is a `double_apply` only when nothing else
//! explains it as well. Two other causes can:
//!
//! - **a skipped number**: the balance did not move across the gap, so the
//!   server may simply have skipped the number(s) (the reapplication the
//!   search found was a denial, or moves that cancel out);
//! - **a false NOT_APPLIED**: an op answered NOT_APPLIED (on its call or by
//!   `GetOperation`) of the same kind, amount and accounts, sent before the
//!   gap closed, could have taken the number instead, had that answer lied.
//!
//! Then the gap is reported by what changed (`sequence_gap` when the
//! balance did not move, else `unexplained_change`) with every explanation
//! in the detail ("either …, or …"), never as `double_apply`.

use crate::history::leg::find_leg;
use crate::history::{History, Kind, Outcome};
use crate::placement::gap::Gap;
use crate::report::describe;

/// The ops answered NOT_APPLIED, sorted by (account, kind, amount), so a
/// reapplied op finds its look-alikes by binary search.
#[derive(Debug, Default)]
pub(crate) struct Disowned {
    keys: Vec<(u32, u8, u64, u32)>,
}

impl Disowned {
    /// Built once per search; ops answered NOT_APPLIED are rare.
    pub(crate) fn build(h: &History) -> Disowned {
        let mut keys: Vec<(u32, u8, u64, u32)> = h
            .ops
            .iter()
            .enumerate()
            .filter(|(_, op)| op.outcome == Outcome::NotApplied)
            .map(|(i, op)| (op.account, op.kind as u8, op.amount, i as u32))
            .collect();
        keys.sort_unstable();
        Disowned { keys }
    }

    /// An op answered NOT_APPLIED that could have taken `op`'s place in
    /// `gap`: same account(s), kind and amount, sent before the gap closed.
    fn look_alike(&self, h: &History, op: u32, gap: &Gap) -> Option<u32> {
        let o = h.ops.get(op as usize)?;
        let key = (o.account, o.kind as u8, o.amount);
        let start = self.keys.partition_point(|k| (k.0, k.1, k.2) < key);
        let to = |i: u32| find_leg(h, i as usize).map(|l| l.to_account);
        self.keys[start..]
            .iter()
            .take_while(|k| (k.0, k.1, k.2) == key)
            .map(|k| k.3)
            .find(|&d| {
                d != op
                    && h.ops[d as usize].send_ns <= gap.window_ns.1
                    && (o.kind != Kind::Transfer || to(d) == to(op))
            })
    }
}

impl Disowned {
    /// For a one-number gap no op explains: an op answered NOT_APPLIED on
    /// this account (a deposit, withdrawal or transfer out of it) whose
    /// effect is the gap's change, sent before the gap closed: the gap's
    /// likely cause, had that answer been false.
    pub(crate) fn fitting(&self, h: &History, gap: &Gap) -> Option<u32> {
        if gap.missing != 1 {
            return None;
        }
        let change = gap.after - gap.before;
        let start = self.keys.partition_point(|k| k.0 < gap.account);
        self.keys[start..]
            .iter()
            .take_while(|k| k.0 == gap.account)
            .find(|k| {
                let op = &h.ops[k.3 as usize];
                let amount = i128::from(op.amount);
                let effect = if op.kind == Kind::Deposit { amount } else { -amount };
                effect == change && op.send_ns <= gap.window_ns.1
            })
            .map(|k| k.3)
    }
}

/// The explanations other than a double apply of `reapplied` for `gap`,
/// in words (empty: the double apply is the only one).
pub(crate) fn alternatives(h: &History, gap: &Gap, reapplied: &[u32], disowned: &Disowned) -> Vec<String> {
    let mut other = Vec::new();
    if gap.before == gap.after {
        let numbers = if gap.missing == 1 {
            "that number"
        } else {
            "those numbers"
        };
        other.push(format!(
            "the server skipped {numbers} (the balance stayed {} across the gap)",
            gap.before
        ));
    }
    for &op in reapplied {
        if let Some(d) = disowned.look_alike(h, op, gap) {
            other.push(format!(
                "{} took effect although it was answered NOT_APPLIED (a false answer, e.g. from GetOperation)",
                describe::op_by_index(h, d)
            ));
        }
    }
    other
}
