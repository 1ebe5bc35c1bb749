//! One account's view of one op: a deposit, a withdrawal, or one side of a
//! transfer. The checker stores only a 32-bit entry number per view and
//! decodes it here on demand, which keeps its memory at a few bytes per op;
//! the index sorts views as 8-byte keys, a sequence number and an entry.

use crate::history::{AccountIdx, History, Kind, Op, Outcome, TransferLeg};

/// An op as seen from one of the accounts it touched.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Leg {
    /// Index of the op in [`History::ops`].
    pub op: u32,
    /// True for the target side of a transfer (money comes in).
    pub target: bool,
    pub kind: Kind,
    pub outcome: Outcome,
    pub amount: u64,
    /// The balance and sequence this account reported for the op.
    pub balance: u64,
    pub sequence: u64,
    pub send_ns: u64,
    pub recv_ns: u64,
}

impl Leg {
    /// The source view of `op` (the only view of a deposit or withdrawal).
    pub(crate) fn source(index: u32, op: &Op) -> Leg {
        Leg {
            op: index,
            target: false,
            kind: op.kind,
            outcome: op.outcome,
            amount: op.amount,
            balance: op.balance,
            sequence: op.sequence,
            send_ns: op.send_ns,
            recv_ns: op.recv_ns,
        }
    }

    /// The target view of the transfer `op`, described by `leg`.
    pub(crate) fn target(op: &Op, leg: &TransferLeg) -> Leg {
        Leg {
            target: true,
            balance: leg.to_balance,
            sequence: leg.to_sequence,
            ..Leg::source(leg.op, op)
        }
    }

    /// For a transfer, the account on the other side. It costs a binary
    /// search for a source view, so only violation details ask for it.
    pub(crate) fn peer(&self, h: &History) -> Option<AccountIdx> {
        if self.target {
            return h.ops.get(self.op as usize).map(|op| op.account);
        }
        find_leg(h, self.op as usize).map(|l| l.to_account)
    }

    /// True when the op moves money into this account if approved.
    pub(crate) fn is_credit(&self) -> bool {
        self.target || self.kind == Kind::Deposit
    }

    /// How the op changed this account's balance, signed.
    pub(crate) fn change(&self) -> i128 {
        match (self.outcome, self.is_credit()) {
            (Outcome::Approved, true) => i128::from(self.amount),
            (Outcome::Approved, false) => -i128::from(self.amount),
            _ => 0,
        }
    }

    /// The balance just before the op, as implied by its reported balance.
    pub(crate) fn implied_before(&self) -> i128 {
        i128::from(self.balance) - self.change()
    }
}

/// True when transfer leg `t` can be trusted: it names an existing transfer
/// op, a different existing target account, and keeps the table sorted.
pub(crate) fn leg_is_valid(h: &History, t: usize) -> bool {
    let Some(leg) = h.transfers.get(t) else {
        return false;
    };
    let Some(op) = h.ops.get(leg.op as usize) else {
        return false;
    };
    let sorted = t == 0 || h.transfers.get(t - 1).is_some_and(|p| p.op < leg.op);
    op.kind == Kind::Transfer
        && sorted
        && (leg.to_account as usize) < h.accounts.len()
        && leg.to_account != op.account
}

/// A view packed in 8 bytes, the index's unit: `sequence << 32 | entry`,
/// so sorting keys sorts views by sequence. The sequence must fit in 32 bits
/// (the index leaves out views whose number does not).
pub(crate) fn key(seq: u64, entry: u32) -> u64 {
    (seq << 32) | u64::from(entry)
}

/// The sequence number packed in a key.
pub(crate) fn key_seq(key: u64) -> u64 {
    key >> 32
}

/// The entry number (see [`decode`]) packed in a key.
pub(crate) fn key_entry(key: u64) -> u32 {
    key as u32
}

/// Decodes an entry number: below `ops.len()` it is the source view of that
/// op, above it the target view of transfer leg `entry - ops.len()`.
pub(crate) fn decode(h: &History, entry: u32) -> Option<Leg> {
    let entry = entry as usize;
    if let Some(op) = h.ops.get(entry) {
        return Some(Leg::source(entry as u32, op));
    }
    let leg = h.transfers.get(entry - h.ops.len())?;
    let op = h.ops.get(leg.op as usize)?;
    Some(Leg::target(op, leg))
}

/// The transfer leg of op `op`, found by binary search (the table is sorted
/// by op). Only used to name a transfer's target in violation details.
pub(crate) fn find_leg(h: &History, op: usize) -> Option<&TransferLeg> {
    let t = h.transfers.binary_search_by_key(&op, |l| l.op as usize).ok()?;
    leg_is_valid(h, t).then(|| &h.transfers[t])
}
