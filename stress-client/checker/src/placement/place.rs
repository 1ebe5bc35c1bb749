//! The exact search for ops of unknown outcome, as Knossos treats Jepsen's
//! `:info` ops but without its cost: each such op took effect exactly once,
//! as itself (its kind, its exact amount, both legs of a transfer with one
//! outcome, no earlier than it was sent), or not at all. The sequence gaps
//! the replay found must be filled exactly by such placements: one op per
//! missing number, the balance walked from before the gap to after it, a
//! denial only where the balance was below the amount.
//!
//! A depth-first search over the missing numbers, account by account, with an
//! explicit stack and a step budget: unknown ops are rare and a gap is almost
//! always filled by the op sent just before it, so the search tries the most
//! recently sent candidates first. When it finds no placement, each gap is
//! tried alone to name the one no placement explains (and whether the second
//! application of a duplicated op would); when the budget runs out, the
//! verdict is inconclusive, never passed.

use std::cell::OnceCell;

use crate::history::History;
use crate::order::index::{Index, Placed};
use crate::placement::ambiguous::{alternatives, Disowned};
use crate::placement::cands::{candidates, set_windows_and_floors};
use crate::placement::gap::Gap;
use crate::placement::search::{Mode, Run, Search};
use crate::report::describe;
use crate::report::{Sink, ViolationKind};

/// Steps one gap alone may take (of the whole check's budget).
const GAP_STEPS_MAX: u64 = 200_000;

/// What the search ended with.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Sorted by op.
    pub placed: Vec<Placed>,
    /// Every gap was filled (or shown to be a violation) within the budget.
    pub complete: bool,
}

/// The search set up once for every try of the joint search: the
/// candidates with their floors, the gaps' windows, and the gaps each
/// fillable alone (`None`: the budget ran out first).
pub(crate) struct Prepared<'a> {
    search: Search<'a>,
    feasible: Option<Vec<Gap>>,
}

/// Sets up the search for `gaps` (sorted by account, then sequence) and
/// tries each gap alone, reporting every gap no placement explains (cheap,
/// and a gap no placement fills alone is a violation whatever the others
/// do), so one hopeless gap cannot send the joint search into endless
/// backtracking. Neither depends on what a try rules out, so the tries
/// share it.
pub(crate) fn prepare<'a>(
    h: &'a History,
    index: &Index,
    gaps: &mut [Gap],
    budget: &mut u64,
    sink: &mut Sink,
) -> Prepared<'a> {
    let mut cands = candidates(h, gaps);
    let windows = set_windows_and_floors(h, index, gaps, &mut cands);
    let mut search = Search::new(h, cands, windows);
    let feasible = alone(&mut search, gaps, budget, sink);
    Prepared { search, feasible }
}

/// Finds a placement for the prepared gaps with `forbidden` spots ruled
/// out, reporting what no placement explains.
pub(crate) fn place(
    prepared: &mut Prepared,
    forbidden: &[(u32, u32, u64)],
    budget: &mut u64,
    sink: &mut Sink,
) -> Outcome {
    let mut out = Outcome::default();
    let Some(feasible) = &prepared.feasible else {
        return out;
    };
    prepared.search.forbid(forbidden);
    place_together(&mut prepared.search, feasible, budget, sink, &mut out);
    out
}

/// Tries each gap alone, reporting those no placement fills; returns the
/// others, or `None` when the budget ran out first (then undecided).
fn alone(search: &mut Search, gaps: &[Gap], budget: &mut u64, sink: &mut Sink) -> Option<Vec<Gap>> {
    let mut feasible = Vec::with_capacity(gaps.len());
    let mut spent: u64 = 0;
    // Built on the first gap a double application explains (rare).
    let disowned = OnceCell::new();
    for gap in gaps {
        let candidates = search.count_for(gap) as u64 + search.reapplies_for(gap) as u64;
        if spent >= *budget {
            *budget = 0;
            sink.undecided(budget_reason());
            return None;
        }
        if gap.missing > candidates {
            // More numbers than ops that could take them: no search needed
            // (and none over a number of slots the server made up).
            report_gap(search, gap, (&mut spent, *budget), &disowned, sink);
            continue;
        }
        let run = search.run(
            std::slice::from_ref(gap),
            GAP_STEPS_MAX.min(*budget - spent),
            Mode::Alone,
        );
        spent += search.steps;
        match run {
            Run::Found => feasible.push(*gap),
            Run::Budget => {
                sink.undecided(budget_reason());
                return None;
            }
            Run::Exhausted => report_gap(search, gap, (&mut spent, *budget), &disowned, sink),
        }
    }
    *budget -= spent.min(*budget);
    Some(feasible)
}

/// The joint search over the gaps that can each be filled alone.
fn place_together(search: &mut Search, gaps: &[Gap], budget: &mut u64, sink: &mut Sink, out: &mut Outcome) {
    if gaps.is_empty() {
        out.complete = true;
        return;
    }
    let run = search.run(gaps, *budget, Mode::Together);
    *budget -= search.steps.min(*budget);
    match run {
        Run::Found => {
            out.placed = search.placements();
            out.complete = true;
        }
        Run::Budget => sink.undecided(budget_reason()),
        Run::Exhausted => {
            out.complete = true;
            sink.report(ViolationKind::UnexplainedChange, describe::ALL_ACCOUNTS, || {
                format!(
                    "each of the {} sequence gap(s) can be filled by ops of unknown outcome on its own, but no placement fills them all at once (an op would have to take effect twice, or a transfer on one side only)",
                    gaps.len()
                )
            });
        }
    }
}

fn budget_reason() -> String {
    "the exact search for where the ops of unknown outcome took effect ran out of its step budget (Limits::search_steps)".to_owned()
}

/// Reports one gap no placement explains: a double application if the
/// second application of a duplicated op explains it and nothing else does
/// (see `ambiguous`), else what changed. The search for a double
/// application spends from `budget` (as `spent`); without budget left the
/// gap is still a violation, named by what changed.
fn report_gap(
    search: &mut Search,
    gap: &Gap,
    (spent, budget): (&mut u64, u64),
    disowned: &OnceCell<Disowned>,
    sink: &mut Sink,
) {
    let h = search.h;
    let fillable = gap.missing <= search.count_for(gap) as u64 + search.reapplies_for(gap) as u64;
    // With more numbers than ops that could take them, no search is needed.
    let steps = GAP_STEPS_MAX.min(budget.saturating_sub(*spent));
    let twice = fillable && steps > 0 && {
        let run = search.run(std::slice::from_ref(gap), steps, Mode::AloneTwice);
        *spent += search.steps;
        matches!(run, Run::Found)
    };
    let disowned = disowned.get_or_init(|| Disowned::build(h));
    if twice {
        return report_reapplied(h, gap, &search.reapplied(), disowned, sink);
    }
    let what = match gap.before == gap.after {
        true => format!("no recorded op took them and the {} op(s) of unknown outcome that could have cannot fill them", search.count_for(gap)),
        false => format!("the balance went from {} to {} across them, a change that no placement of the {} op(s) of unknown outcome that could have taken them explains", gap.before, gap.after, search.count_for(gap)),
    };
    let hint = disowned.fitting(h, gap).map_or(String::new(), |d| {
        let op = describe::op_by_index(h, d);
        format!("; {op} was answered NOT_APPLIED but would explain it, had that answer (e.g. from GetOperation) been false")
    });
    let (range, next, is) = gap_words(h, gap);
    sink.report(gap_kind(gap), &describe::account(h, gap.account as usize), || {
        format!("{range} (before {next}) {is} missing: {what}{hint}")
    });
}

/// Reports a gap the second application of `reapplied` explains: a double
/// apply when nothing else does, else ambiguous (see `ambiguous`).
fn report_reapplied(h: &History, gap: &Gap, reapplied: &[u32], disowned: &Disowned, sink: &mut Sink) {
    let id = describe::account(h, gap.account as usize);
    let (range, next, is) = gap_words(h, gap);
    let ops: Vec<String> = reapplied.iter().map(|&op| describe::op_by_index(h, op)).collect();
    let ops = ops.join(", ");
    let other = alternatives(h, gap, reapplied, disowned);
    if other.is_empty() {
        sink.report(ViolationKind::DoubleApply, &id, || {
            format!("{range} (before {next}) can only be explained by {ops} taking effect a second time: a retried request id was applied twice (double apply)")
        });
        return;
    }
    sink.report(gap_kind(gap), &id, || {
        format!("{range} (before {next}) {is} missing, and more than one cause explains it: either {ops} took effect a second time (a retried request id applied twice), or {} (ambiguous gap)", other.join(", or "))
    });
}

/// A gap's kind by what changed: `sequence_gap` when the balance did not
/// move across it, else `unexplained_change`.
fn gap_kind(gap: &Gap) -> ViolationKind {
    match gap.before == gap.after {
        true => ViolationKind::SequenceGap,
        false => ViolationKind::UnexplainedChange,
    }
}

/// "seq 4..5", what follows the gap, and "is" or "are".
fn gap_words(h: &History, gap: &Gap) -> (String, String, &'static str) {
    let range = describe::seq_range(gap.first_seq, gap.last_seq());
    let is = if gap.missing == 1 { "is" } else { "are" };
    (range, describe::gap_end(h, gap.next), is)
}
