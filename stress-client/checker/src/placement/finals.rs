//! Compares each account's replay with the state read after the run: a
//! NOT_FOUND or a sequence below an acknowledged one is lost acknowledged
//! state; sequence numbers past the last recorded one are a trailing gap for
//! the exact search; otherwise the final balance must be the replayed one.

use crate::history::History;
use crate::placement::gap::{Gap, NO_OWN_WINDOWS, NO_SLOT_WINDOWS};
use crate::placement::walk::AccountEnd;
use crate::report::describe;
use crate::report::{CheckStats, Sink, ViolationKind};

/// Checks account `a`'s final state against the end of its replay, adding
/// its trailing gap (if any) to `gaps`.
pub(crate) fn check_account(
    h: &History,
    a: usize,
    end: &AccountEnd,
    gaps: &mut Vec<Gap>,
    sink: &mut Sink,
    stats: &mut CheckStats,
) {
    let Some(state) = h.accounts.get(a) else {
        return;
    };
    if state.final_not_found {
        sink.report(ViolationKind::LostAck, &state.account_id, || {
            "the final read answered NOT_FOUND, but the account's opening had been acknowledged (lost acknowledgement)".to_owned()
        });
        return;
    }
    let (Some(balance), Some(seq)) = (state.final_balance, state.final_sequence) else {
        stats.accounts_without_final_state += 1;
        return;
    };
    compare(state, a, (balance, seq), end, gaps, sink);
}

/// The final (balance, sequence) against the end of the replay.
fn compare(
    state: &crate::history::AccountState,
    a: usize,
    (balance, seq): (u64, u64),
    end: &AccountEnd,
    gaps: &mut Vec<Gap>,
    sink: &mut Sink,
) {
    let last = end.last_seq;
    if seq < last {
        sink.report(ViolationKind::LostAck, &state.account_id, || {
            format!("the final read says sequence {seq}, but seq {last} had already been acknowledged: acknowledged state moved backwards (lost acknowledgement)")
        });
    } else if seq > last {
        gaps.push(Gap {
            account: a as u32,
            first_seq: last + 1,
            missing: seq - last,
            before: end.balance,
            after: i128::from(balance),
            next: None,
            window_ns: (0, u64::MAX),
            slot_windows: NO_SLOT_WINDOWS,
            own_windows: NO_OWN_WINDOWS,
        });
    } else if i128::from(balance) != end.balance {
        sink.report(ViolationKind::FinalBalance, &state.account_id, || {
            let how = describe::replay(&end.anchor, end.last_seq, end.balance);
            format!(
                "the final balance read after the run is {balance}, but it should be {} ({how})",
                end.balance
            )
        });
    }
}
