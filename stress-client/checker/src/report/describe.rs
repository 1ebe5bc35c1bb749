//! Plain-English pieces for violation details: how to name an account, an
//! op, a replay. Only called for violations whose detail is kept, so none of
//! this formatting runs per op.

use crate::history::leg::{decode, key_entry, Leg};
use crate::history::{History, Kind, Outcome};

/// The account name used for problems with the history as a whole.
pub(crate) const HISTORY: &str = "(history)";
/// The account name used for the global conservation check.
pub(crate) const ALL_ACCOUNTS: &str = "(all accounts)";

/// An account's id, or `#<index>` when the index names no account.
pub(crate) fn account(h: &History, a: usize) -> String {
    match h.accounts.get(a) {
        Some(state) => state.account_id.clone(),
        None => format!("#{a}"),
    }
}

/// What the op asked for, from this account's side: "withdrawal of 80",
/// "transfer of 5 to acct-2", "transfer of 5 from acct-1".
pub(crate) fn leg(h: &History, leg: &Leg) -> String {
    let amount = leg.amount;
    let peer = || {
        leg.peer(h)
            .map_or("an unknown account".to_owned(), |p| account(h, p as usize))
    };
    match (leg.kind, leg.target) {
        (Kind::Deposit, _) => format!("deposit of {amount}"),
        (Kind::Withdraw, _) => format!("withdrawal of {amount}"),
        (Kind::Transfer, false) => format!("transfer of {amount} to {}", peer()),
        (Kind::Transfer, true) => format!("transfer of {amount} from {}", peer()),
    }
}

/// "withdrawal of 80 at seq 2".
pub(crate) fn at_seq(h: &History, l: &Leg) -> String {
    format!("{} at seq {}", leg(h, l), l.sequence)
}

/// "seq 4" or "seq 4..7".
pub(crate) fn seq_range(from: u64, to: u64) -> String {
    if from == to {
        format!("seq {from}")
    } else {
        format!("seq {from}..{to}")
    }
}

/// Where the current stretch of replay started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The account's opening balance, before seq 1.
    Initial,
    /// A balance an op reported (the replay restarted there after a mismatch).
    Reported,
    /// The balance implied by the first op after a gap in the sequence.
    Gap,
}

/// A replay's starting point: the balance after sequence number `seq`. The
/// replay (`placement::walk`) keeps it only to say where its numbers came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Anchor {
    pub seq: u64,
    pub balance: i128,
    pub origin: Origin,
}

/// Where a replay starts: "the initial balance 100", "the balance 30 reported at seq 4".
pub(crate) fn anchor(a: &Anchor) -> String {
    match a.origin {
        Origin::Initial => format!("the initial balance {}", a.balance),
        Origin::Reported => format!("the balance {} reported at seq {}", a.balance, a.seq),
        Origin::Gap => format!(
            "the balance {} implied just before seq {}",
            a.balance,
            a.seq.saturating_add(1)
        ),
    }
}

/// How the replay reached `result` after seq `upto`: "replaying seq 1..2
/// from the initial balance 100 gives -50", or just the anchor when no op
/// lies between.
pub(crate) fn replay(a: &Anchor, upto: u64, result: i128) -> String {
    if upto <= a.seq {
        return anchor(a);
    }
    let range = seq_range(a.seq + 1, upto);
    format!("replaying {range} from {} gives {result}", anchor(a))
}

/// Lists the ops at sorted positions `from..to` of an account, at most three:
/// "withdrawal of 70, deposit of 5 and 2 more".
pub(crate) fn list(h: &History, keys: &[u64], from: usize, to: usize) -> String {
    const SHOWN: usize = 3;
    let legs = keys.get(from..to).unwrap_or(&[]);
    let mut names: Vec<String> = legs
        .iter()
        .take(SHOWN)
        .filter_map(|k| decode(h, key_entry(*k)))
        .map(|l| leg(h, &l))
        .collect();
    if legs.len() > SHOWN {
        names.push(format!("{} more", legs.len() - SHOWN));
    }
    names.join(", ")
}

/// "op #12 (withdrawal of 5)".
pub(crate) fn op_label(h: &History, l: &Leg) -> String {
    format!("op #{} ({})", l.op, leg(h, l))
}

/// An outcome in words.
pub(crate) fn outcome(o: Outcome) -> &'static str {
    match o {
        Outcome::Approved => "approved",
        Outcome::InsufficientFunds => "denied for insufficient funds",
        Outcome::NotApplied => "not applied",
        Outcome::Unknown => "of unknown outcome",
        Outcome::Invalid => "answered an outcome outside the contract",
    }
}

/// "op #12 (deposit of 5)" from an op index.
pub(crate) fn op_by_index(h: &History, op: u32) -> String {
    match h.ops.get(op as usize) {
        Some(o) => op_label(h, &Leg::source(op, o)),
        None => format!("op #{op}"),
    }
}

/// What follows a gap: "withdrawal of 80 at seq 9", or the final read.
pub(crate) fn gap_end(h: &History, next: Option<u32>) -> String {
    match next.and_then(|e| decode(h, e)) {
        Some(l) => at_seq(h, &l),
        None => "the final read".to_owned(),
    }
}

/// "transfer of 5 from x to y", whichever view `l` is.
pub(crate) fn op_whole(h: &History, l: &Leg) -> String {
    let from = h.ops.get(l.op as usize).map_or(0, |o| o.account as usize);
    match (l.kind, l.peer(h)) {
        (Kind::Transfer, Some(p)) => {
            let (src, dst) = if l.target {
                (p as usize, from)
            } else {
                (from, p as usize)
            };
            format!(
                "op #{} (transfer of {} from {} to {})",
                l.op,
                l.amount,
                account(h, src),
                account(h, dst)
            )
        }
        _ => op_label(h, l),
    }
}
