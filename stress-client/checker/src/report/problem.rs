//! Records the checks cannot use, found while the index is built: why an
//! op's record is left out (`Problem`), under which kind it is reported,
//! and the words for it, for a transfer-table entry that cannot be trusted
//! and for a sequence number no account can reach.

use crate::history::leg::{decode, Leg};
use crate::history::{History, Kind, TransferLeg};
use crate::report::describe::{op_label, outcome};
use crate::report::ViolationKind;

/// Why an op's record cannot be (fully) used.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Problem {
    AccountOutOfRange,
    MissingLeg,
    DeniedDeposit,
    ZeroSequence,
    ZeroTargetSequence,
    RecvBeforeSend,
}

impl Problem {
    /// Answers the contract forbids are `protocol`; broken records `malformed`.
    pub(crate) fn kind(self) -> ViolationKind {
        match self {
            Problem::DeniedDeposit | Problem::ZeroSequence | Problem::ZeroTargetSequence => {
                ViolationKind::Protocol
            }
            _ => ViolationKind::Malformed,
        }
    }

    /// Why an op's record was left out of the checks.
    pub(crate) fn detail(self, h: &History, l: &Leg) -> String {
        let op = op_label(h, l);
        match self {
            Problem::AccountOutOfRange => match h.ops.get(l.op as usize) {
                Some(o) => format!(
                    "op #{} names account index {}, but the history has only {} accounts",
                    l.op,
                    o.account,
                    h.accounts.len()
                ),
                None => format!("op #{} names no account", l.op),
            },
            Problem::MissingLeg => format!(
                "{op} is a transfer without a valid entry in the transfer table, so its target cannot be checked"
            ),
            Problem::DeniedDeposit => {
                format!("{op} is recorded as denied for insufficient funds, which a deposit cannot be")
            }
            Problem::ZeroSequence => format!(
                "{op} is recorded as {} with sequence 0, which the server never hands out",
                outcome(l.outcome)
            ),
            Problem::ZeroTargetSequence => {
                format!("{op} is recorded with target sequence 0, which the server never hands out")
            }
            Problem::RecvBeforeSend => format!(
                "{op} got its reply at {} ns, before it was sent at {} ns",
                l.recv_ns, l.send_ns
            ),
        }
    }
}

/// Why a transfer-table entry cannot be trusted.
pub(crate) fn bad_leg(h: &History, t: usize, leg: &TransferLeg) -> String {
    let this = format!("transfer-table entry #{t} (for op #{})", leg.op);
    let Some(op) = h.ops.get(leg.op as usize) else {
        return format!("{this} points past the {} recorded ops", h.ops.len());
    };
    if op.kind != Kind::Transfer {
        return format!("{this} points at a {:?} op, not a transfer", op.kind);
    }
    if leg.to_account as usize >= h.accounts.len() {
        return format!(
            "{this} names target account index {}, but the history has only {} accounts",
            leg.to_account,
            h.accounts.len()
        );
    }
    if leg.to_account == op.account {
        return format!("{this} transfers from an account to itself");
    }
    format!("{this} is out of order or repeats an op: the table must be sorted by op, one entry each")
}

/// Why a view's sequence number is impossible.
pub(crate) fn impossible_sequence(h: &History, entry: u32, seq: u64) -> String {
    let what = decode(h, entry).map_or_else(|| format!("entry #{entry}"), |l| op_label(h, &l));
    format!(
        "{what} claims seq {seq}, which would take more than {} ops on one account; the record is corrupt",
        u32::MAX
    )
}
