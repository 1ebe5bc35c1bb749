//! Global conservation: money only enters through deposits and leaves
//! through withdrawals (transfers move it), so the final balances must sum to
//! the initial ones plus the net of approved ops, give or take unknown ones.

use crate::describe;
use crate::history::{History, Kind, Outcome};
use crate::report::{CheckStats, Sink, ViolationKind};

/// Sums of money, in u128 so a million u64 amounts cannot overflow.
#[derive(Debug, Default)]
struct Flows {
    initial: u128,
    finals: u128,
    deposited: u128,
    withdrawn: u128,
    maybe_deposited: u128,
    maybe_withdrawn: u128,
}

/// Checks conservation when every final balance is known.
pub(crate) fn check(h: &History, sink: &mut Sink, stats: &mut CheckStats) {
    let Some(mut f) = balances(h) else {
        return;
    };
    stats.conservation_checked = true;
    add_ops(h, &mut f);
    let inflow = f.initial.saturating_add(f.deposited);
    let low = f
        .finals
        .saturating_add(f.withdrawn)
        .saturating_add(f.maybe_withdrawn);
    let high = inflow.saturating_add(f.maybe_deposited);
    // finals must lie in [inflow - withdrawn - maybe_withdrawn, inflow - withdrawn + maybe_deposited],
    // rearranged so that nothing is subtracted.
    if low >= inflow && f.finals.saturating_add(f.withdrawn) <= high {
        return;
    }
    sink.report(ViolationKind::Conservation, describe::ALL_ACCOUNTS, || {
        explain(&f)
    });
}

/// The initial and final totals, or `None` if some final balance is missing.
fn balances(h: &History) -> Option<Flows> {
    let mut f = Flows::default();
    for state in &h.accounts {
        f.initial = f.initial.saturating_add(u128::from(state.initial_balance));
        f.finals = f.finals.saturating_add(u128::from(state.final_balance?));
    }
    Some(f)
}

/// Adds the deposits and withdrawals that did or may have happened. Ops on
/// accounts outside the history are malformed and reported elsewhere.
fn add_ops(h: &History, f: &mut Flows) {
    let n = h.accounts.len();
    for op in h.ops.iter().filter(|op| (op.account as usize) < n) {
        let amount = u128::from(op.amount);
        let side = match (op.kind, op.outcome) {
            (Kind::Deposit, Outcome::Approved) => &mut f.deposited,
            (Kind::Withdraw, Outcome::Approved) => &mut f.withdrawn,
            (Kind::Deposit, Outcome::Unknown) => &mut f.maybe_deposited,
            (Kind::Withdraw, Outcome::Unknown) => &mut f.maybe_withdrawn,
            _ => continue,
        };
        *side = side.saturating_add(amount);
    }
}

/// The violation in words, with the expected total as a signed number.
fn explain(f: &Flows) -> String {
    let signed = |x: u128| i128::try_from(x).unwrap_or(i128::MAX);
    let expected = signed(f.initial)
        .saturating_add(signed(f.deposited))
        .saturating_sub(signed(f.withdrawn));
    let mut text = format!(
        "the accounts ended with {} in total, but they started with {}, approved deposits added {} and approved withdrawals took {}, so they should hold {expected}",
        f.finals, f.initial, f.deposited, f.withdrawn
    );
    if f.maybe_deposited > 0 || f.maybe_withdrawn > 0 {
        text += &format!(
            ", give or take ops of unknown outcome (between {} and {})",
            expected.saturating_sub(signed(f.maybe_withdrawn)),
            expected.saturating_add(signed(f.maybe_deposited))
        );
    }
    text + " (money created or destroyed)"
}
