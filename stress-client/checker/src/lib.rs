//! bank-checker: decides whether a recorded history of `bank.v1` operations
//! could have come from a correct server, whatever its language. It is the
//! conformance and linearizability test of the contract. Pure and
//! synchronous, so it is tested on hand-built histories and reused anywhere.
//!
//! # What is checked
//!
//! - **Answers** (`protocol`, `lost_ack`): outcomes outside the contract,
//!   foreign request ids, `replayed` flags that cannot be, sequence 0 on an
//!   applied op, NOT_FOUND for an opened account, state moving backwards.
//! - **Each account** (`duplicate_sequence`, `lost_update`, `overdraft`,
//!   `unjustified_denial`, `real_time_order`, `final_balance`): replayed in
//!   sequence order from its opening balance.
//! - **Ops of unknown outcome** (`sequence_gap`, `unexplained_change`,
//!   `double_apply`): each took effect exactly once, as itself, no earlier
//!   than it was sent, or not at all; the gaps in the sequence numbers must
//!   be filled exactly by such placements (see `placement`).
//! - **One order for everything** (`order_cycle`): every op, a transfer as
//!   one node with two legs, and every read, right after the op whose
//!   sequence it saw, in one order that respects each account's sequence
//!   and real time among ops and reads alike (read skew is a cycle).
//! - **Reads** (`stale_read`, `impossible_read`: against the ops and against
//!   each other) and **retries** (`double_apply`, `replay_mismatch`,
//!   ABORTED only for a waiting withdrawal) made under load. A gap that
//!   a retry applied twice explains is `double_apply` only when no other
//!   cause (a skipped number, a false NOT_APPLIED) explains it as well.
//! - **Conservation** across all accounts, with the exact placement.
//! - **Invalid calls** (`protocol`): calls that break the contract on
//!   purpose must be refused with its status (see `answers`).
//!
//! The verdict is `passed` only when everything was decided; `inconclusive`
//! says what could not be (an unread final state, the search budget);
//! `failed` when any violation was found.
//!
//! # Layers
//!
//! The data flows from the records through the index and the order of ops
//! and reads to the placement of ops of unknown outcome, and every step
//! hands its findings to the report. Files import only downward, one
//! folder a layer (each `mod.rs` says what lives there and what it may
//! import): `history` (the records; imports nothing) <- `report` (the
//! verdict and its words) <- `answers` and `order` (answers one by one; the
//! index, real time, the one order, the reads) <- `placement` (the replay
//! and the exact search) <- this file, the pipeline.
//!
//! # Cost
//!
//! One flat array of 8-byte keys (two per transfer, one per other applied
//! op), two sorted arrays of op indices and a byte per op for the global
//! order; O(n log n) time, no per-op allocation.

mod answers;
pub mod history;
mod order;
mod placement;
mod report;

pub use history::synth;
pub use history::{
    AccountIdx, AccountState, Duplicate, History, Invalid, InvalidCall, Kind, Op, Outcome, Processes, Read,
    TransferLeg,
};
pub use report::{CheckStats, Checked, Report, Verdict, Violation, ViolationKind, MAX_REPORTED_VIOLATIONS};

use answers::{invalid, protocol, replays};
use order::global;
use order::index::{Index, Pass};
use order::reads;
use placement::gap::Gap;
use placement::{conservation, finals, place, walk};
use report::Sink;

/// The checker's own bounds: past them it answers inconclusive, never passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Candidate tries the exact search for ops of unknown outcome may make,
    /// over all its runs (about 50 ns each in release builds).
    pub search_steps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            search_steps: 20_000_000,
        }
    }
}

/// How many placements the global order may send back to the search.
const REPLACEMENTS_MAX: usize = 64;
/// A try on a guess gets this fraction of the search budget left (1/4).
const GUESS_SHARE: u64 = 4;

/// One try of the search under some ruled-out spots.
struct Trial {
    placement: place::Outcome,
    /// The index with the placed ops (`None`: nothing placed, the first one serves).
    index: Option<Index>,
    sink: Sink,
    order: global::Order,
}

/// Places the ops of unknown outcome and checks the global order. While a
/// cycle runs through placed ops, the search is asked again without one of
/// their spots: a spot ruled out for sure keeps the result exact; one ruled
/// out on a guess (several placed ops in the cycle, each tried in turn) can
/// only find a passing placement, never prove a failure.
fn place_in_order(
    h: &History,
    index: Index,
    gaps: &mut [Gap],
    budget: &mut u64,
    sink: &mut Sink,
    stats: &mut CheckStats,
) -> (place::Outcome, Index) {
    let mut prepared = place::prepare(h, &index, gaps, budget, sink);
    let mut known = global::Known::default();
    let mut queue = std::collections::VecDeque::from([(Vec::new(), false)]);
    let mut first: Option<Trial> = None;
    let mut tries = 0;
    while let Some((forbidden, guessed)) = queue.pop_front() {
        tries += 1;
        stats.order_retries = tries as u64 - 1;
        // A guess may spend a share of what is left: one that rules out the
        // right spot can make the search exhaust every choice.
        let mut allowed = match guessed {
            true => *budget / GUESS_SHARE,
            false => *budget,
        };
        let given = allowed;
        let t = trial(
            h,
            &index,
            (&mut prepared, &mut known),
            &forbidden,
            &mut allowed,
            stats,
        );
        *budget -= given - allowed;
        let failed = t.sink.failed() || matches!(t.order, global::Order::Cycle);
        if let global::Order::Misplaced { spots, sure } = &t.order {
            for &spot in spots.iter().take(if *sure { 1 } else { spots.len() }) {
                let mut more = forbidden.clone();
                more.push(spot);
                queue.push_back((more, guessed || !sure));
            }
        }
        // A guess settles only a clean pass: what it rules out may be true.
        let clean = !failed && !t.sink.left_open();
        let settled = !matches!(t.order, global::Order::Misplaced { .. }) && (clean || !guessed);
        if settled || tries >= REPLACEMENTS_MAX || (first.is_none() && queue.is_empty()) {
            let chosen = if settled { t } else { first.unwrap_or(t) };
            let (placement, placed) = finish(chosen, sink, stats);
            return (placement, placed.unwrap_or(index));
        }
        if first.is_none() {
            first = Some(t);
        }
    }
    // The queue ran dry without a settled try: the first one stands.
    let (placement, placed) = finish(first.expect("at least one try ran"), sink, stats);
    (placement, placed.unwrap_or(index))
}

/// Runs the search once and checks the order of what it placed.
fn trial(
    h: &History,
    index: &Index,
    (prepared, known): (&mut place::Prepared, &mut global::Known),
    forbidden: &[(u32, u32, u64)],
    budget: &mut u64,
    stats: &mut CheckStats,
) -> Trial {
    let mut sink = Sink::default();
    let placement = place::place(prepared, forbidden, budget, &mut sink);
    // Without placements the first index is the whole story: no rebuild.
    let placed_index = match placement.placed.is_empty() {
        true => None,
        false => Index::build(h, &placement.placed, Pass::Placed, &mut sink, stats),
    };
    let order = match placement.complete {
        true => global::check(h, index, placed_index.as_ref(), known, &mut sink),
        false => global::Order::Acyclic,
    };
    Trial {
        placement,
        index: placed_index,
        sink,
        order,
    }
}

/// Takes a try's findings into the report; a cycle left through placed ops
/// is an open question, not a violation.
fn finish(t: Trial, sink: &mut Sink, stats: &mut CheckStats) -> (place::Outcome, Option<Index>) {
    let mut trial_sink = t.sink;
    match t.order {
        global::Order::Misplaced { .. } => trial_sink.undecided(
            "the ops of unknown outcome could not be placed in one global order within the tries allowed (a cycle runs through them)".to_owned(),
        ),
        global::Order::Acyclic => stats.order_checked = t.placement.complete,
        global::Order::Cycle => {}
    }
    sink.absorb(trial_sink);
    (t.placement, t.index)
}

/// Checks a history and returns the verdict. Never panics, whatever the input.
pub fn check(history: &History) -> Report {
    check_with(history, &Limits::default())
}

/// As [`check`], within `limits`.
pub fn check_with(history: &History, limits: &Limits) -> Report {
    let h = history;
    let mut sink = Sink::default();
    let mut stats = CheckStats {
        accounts: h.accounts.len() as u64,
        ops: h.ops.len() as u64,
        ..CheckStats::default()
    };
    let mut checked = Checked {
        ops: h.ops.len() as u64,
        reads: h.reads.len() as u64,
        duplicates: h.duplicates.len() as u64,
        ..Checked::default()
    };
    protocol::check(h, &mut sink);
    replays::check(h, &mut sink);
    invalid::check(h, &mut sink);
    let Some(index) = Index::build(h, &[], Pass::First, &mut sink, &mut stats) else {
        return sink.into_report(checked, stats);
    };
    checked.transfers = stats.transfers;
    let mut gaps = replay_accounts(h, &index, &mut sink, &mut stats);
    let mut budget = limits.search_steps;
    let (placement, index) = place_in_order(h, index, &mut gaps, &mut budget, &mut sink, &mut stats);
    checked.unknown_applied = placement.placed.len() as u64;
    checked.unknown_not_applied = stats.unknown_ops.saturating_sub(checked.unknown_applied);
    stats.unknown_sequence_slots = placement
        .placed
        .iter()
        .map(|p| u64::from(p.seq > 0) + u64::from(p.to_seq > 0))
        .sum();
    if placement.complete {
        conservation::check(h, &placement.placed, &mut sink, &mut stats);
    }
    reads::check(h, &index, &placement.placed, &mut sink);
    reads::check_backwards(h, &mut sink);
    if stats.accounts_without_final_state > 0 {
        sink.undecided(format!(
            "the final state of {} account(s) could not be read, so ops of unknown outcome at their end and conservation could not be checked",
            stats.accounts_without_final_state
        ));
    }
    sink.into_report(checked, stats)
}

/// Replays every account and compares it with its final read; returns the
/// sequence gaps found (sorted by account, then sequence).
fn replay_accounts(h: &History, index: &Index, sink: &mut Sink, stats: &mut CheckStats) -> Vec<Gap> {
    let mut gaps = Vec::new();
    for a in 0..h.accounts.len() {
        let end = walk::walk_account(h, index, a, &mut gaps, sink, stats);
        finals::check_account(h, a, &end, &mut gaps, sink, stats);
    }
    gaps
}
