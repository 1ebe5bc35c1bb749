//! Global conservation: money only enters through deposits and leaves
//! through withdrawals (a transfer moves it, both legs at once), so the final
//! balances must sum to the initial ones plus the net of the approved ops,
//! those of unknown outcome counted exactly where the search placed them.

use crate::history::{History, Kind, Outcome};
use crate::order::index::Placed;
use crate::report::describe;
use crate::report::{CheckStats, Sink, ViolationKind};

/// Sums of money, in u128 so a million u64 amounts cannot overflow.
#[derive(Debug, Default)]
struct Flows {
    initial: u128,
    finals: u128,
    deposited: u128,
    withdrawn: u128,
    transfers: u64,
}

/// Checks conservation when every final balance is known; `placed` (sorted
/// by op) says which ops of unknown outcome took effect.
pub(crate) fn check(h: &History, placed: &[Placed], sink: &mut Sink, stats: &mut CheckStats) {
    let Some(mut f) = balances(h) else {
        return;
    };
    stats.conservation_checked = true;
    add_ops(h, placed, &mut f);
    if f.finals.saturating_add(f.withdrawn) == f.initial.saturating_add(f.deposited) {
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

/// Adds the deposits and withdrawals that took effect. Ops on accounts
/// outside the history are malformed and reported elsewhere.
fn add_ops(h: &History, placed: &[Placed], f: &mut Flows) {
    let n = h.accounts.len();
    let mut next = 0;
    for (i, op) in h.ops.iter().enumerate() {
        while placed.get(next).is_some_and(|p| (p.op as usize) < i) {
            next += 1;
        }
        let took = match op.outcome {
            Outcome::Approved => true,
            o if o.is_open() => placed.get(next).is_some_and(|p| p.op as usize == i && p.approved),
            _ => false,
        };
        if !took || (op.account as usize) >= n {
            continue;
        }
        let amount = u128::from(op.amount);
        match op.kind {
            Kind::Deposit => f.deposited = f.deposited.saturating_add(amount),
            Kind::Withdraw => f.withdrawn = f.withdrawn.saturating_add(amount),
            Kind::Transfer => f.transfers += 1,
        }
    }
}

/// The violation in words, with the expected total as a signed number.
fn explain(f: &Flows) -> String {
    let signed = |x: u128| i128::try_from(x).unwrap_or(i128::MAX);
    let expected = signed(f.initial)
        .saturating_add(signed(f.deposited))
        .saturating_sub(signed(f.withdrawn));
    format!(
        "the accounts ended with {} in total, but they started with {}, deposits added {} and withdrawals took {} ({} transfers moved money between them), so they should hold {expected} (money created or destroyed)",
        f.finals, f.initial, f.deposited, f.withdrawn, f.transfers
    )
}
