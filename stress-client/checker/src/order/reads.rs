//! Reads under load: each GetBalance answer (balance, sequence) must equal
//! the replayed state right after that sequence number (`impossible_read`),
//! must not be older than an op of that account answered before the read
//! was sent, and must not include an op sent after the read was answered
//! (`stale_read`). NOT_FOUND for an opened account, or a sequence past the
//! one the account ended with, is lost acknowledged state (`lost_ack`).
//! Reads are also judged against each other: a read sent after another read
//! of the same account was answered must not see an older sequence (two
//! reads going backwards, `stale_read`). Across accounts, reads are nodes of
//! the one order (`global`, `readnodes`), which catches read skew.

use crate::history::leg::decode;
use crate::history::leg::{key_entry, key_seq};
use crate::history::{History, Read};
use crate::order::index::Index;
use crate::order::index::Placed;
use crate::order::timeline::Timeline;
use crate::report::describe;
use crate::report::{Sink, ViolationKind};

/// Checks every read, account by account.
pub(crate) fn check(h: &History, index: &Index, placed: &[Placed], sink: &mut Sink) {
    let mut order: Vec<u32> = (0..h.reads.len() as u32).collect();
    order.sort_unstable_by_key(|&r| h.reads[r as usize].account);
    let mut current: Option<(u32, Timeline)> = None;
    for r in order {
        let read = &h.reads[r as usize];
        let Some(state) = h.accounts.get(read.account as usize) else {
            sink.report(ViolationKind::Malformed, describe::HISTORY, || {
                format!(
                    "read #{r} names account index {}, but the history has only {} accounts",
                    read.account,
                    h.accounts.len()
                )
            });
            continue;
        };
        if read.not_found {
            sink.report(ViolationKind::LostAck, &state.account_id, || {
                format!("GetBalance sent at {} ns answered NOT_FOUND, but the account's opening had been acknowledged (lost acknowledgement)", read.send_ns)
            });
            continue;
        }
        if current.as_ref().is_none_or(|(a, _)| *a != read.account) {
            current = Some((read.account, Timeline::build(h, index, read.account as usize)));
        }
        if let Some((_, timeline)) = current.as_ref() {
            check_read(h, index, placed, timeline, read, sink);
        }
    }
}

/// Two reads of one account going backwards: a read sent after another was
/// answered saw an older sequence. Per account, reads sorted by send time
/// meet the reads answered before each send through one pointer into the
/// reads sorted by reply time, keeping the highest sequence seen so far:
/// O(r log r) in all.
pub(crate) fn check_backwards(h: &History, sink: &mut Sink) {
    let valid = |r: &u32| {
        let read = &h.reads[*r as usize];
        !read.not_found && (read.account as usize) < h.accounts.len()
    };
    let mut by_send: Vec<u32> = (0..h.reads.len() as u32).filter(valid).collect();
    let mut by_recv = by_send.clone();
    by_send.sort_unstable_by_key(|&r| (h.reads[r as usize].account, h.reads[r as usize].send_ns));
    by_recv.sort_unstable_by_key(|&r| (h.reads[r as usize].account, h.reads[r as usize].recv_ns));
    let mut next = 0;
    // The read with the highest sequence among those answered so far.
    let mut newest: Option<u32> = None;
    for &r in &by_send {
        let read = &h.reads[r as usize];
        if newest.is_some_and(|n| h.reads[n as usize].account != read.account) {
            newest = None;
        }
        while let Some(&e) = by_recv.get(next) {
            let earlier = &h.reads[e as usize];
            let before = (earlier.account, earlier.recv_ns) < (read.account, read.send_ns);
            if !before {
                break;
            }
            next += 1;
            if earlier.account == read.account
                && newest.is_none_or(|n| h.reads[n as usize].sequence < earlier.sequence)
            {
                newest = Some(e);
            }
        }
        if let Some(n) = newest.filter(|&n| h.reads[n as usize].sequence > read.sequence) {
            report_backwards(h, (n, r), sink);
        }
    }
}

/// Reports read `later` seeing an older state than `earlier`, answered before it was sent.
fn report_backwards(h: &History, (earlier, later): (u32, u32), sink: &mut Sink) {
    let (e, l) = (&h.reads[earlier as usize], &h.reads[later as usize]);
    let id = describe::account(h, l.account as usize);
    sink.report(ViolationKind::StaleRead, &id, || {
        format!(
            "read #{later} (GetBalance sent at {} ns) saw seq {} (balance {}), but read #{earlier} (GetBalance answered at {} ns, before it was sent) had already seen seq {} (balance {}): two reads went backwards (stale read)",
            l.send_ns, l.sequence, l.balance, e.recv_ns, e.sequence, e.balance
        )
    });
}

/// Checks one read of an existing account.
fn check_read(
    h: &History,
    index: &Index,
    placed: &[Placed],
    timeline: &Timeline,
    read: &Read,
    sink: &mut Sink,
) {
    let a = read.account as usize;
    let id = describe::account(h, a);
    let seen = read.sequence;
    let floor = timeline.answered_before(read.send_ns);
    if seen < floor {
        sink.report(ViolationKind::StaleRead, &id, || {
            format!("GetBalance sent at {} ns saw seq {seen} (balance {}), but seq {floor} had already been answered before the read was sent (stale read)", read.send_ns, read.balance)
        });
        return;
    }
    if let Some(later) = timeline.sent_after(read.recv_ns).filter(|&s| s <= seen) {
        sink.report(ViolationKind::StaleRead, &id, || {
            format!("GetBalance answered at {} ns saw seq {seen}, which includes seq {later}, an op sent only after the read was answered (read from the future)", read.recv_ns)
        });
        return;
    }
    match state_at(h, index, placed, a, seen) {
        State::Known(balance) if balance != read.balance => {
            sink.report(ViolationKind::ImpossibleRead, &id, || {
                format!("GetBalance saw balance {} at seq {seen}, but the balance right after seq {seen} was {balance} (impossible read)", read.balance)
            });
        }
        State::Beyond(last) => {
            sink.report(ViolationKind::LostAck, &id, || {
                format!("GetBalance saw seq {seen}, but the account ended at seq {last}: acknowledged state moved backwards (lost acknowledgement)")
            });
        }
        _ => {}
    }
}

/// What the history says about an account right after one sequence number.
enum State {
    Known(u64),
    /// Past the account's final sequence (this one).
    Beyond(u64),
    /// In a gap nothing explains, or past the last known number: no claim.
    Open,
}

/// The balance of account `a` right after sequence number `seq`.
fn state_at(h: &History, index: &Index, placed: &[Placed], a: usize, seq: u64) -> State {
    let state = &h.accounts[a];
    if seq == 0 {
        return State::Known(state.initial_balance);
    }
    if let Some(last) = state.final_sequence.filter(|&f| seq > f) {
        return State::Beyond(last);
    }
    let keys = index.keys(a);
    let Some(&k) = keys.get(index.position(a, seq)).filter(|&&k| key_seq(k) == seq) else {
        return State::Open;
    };
    let Some(leg) = decode(h, key_entry(k)) else {
        return State::Open;
    };
    if !leg.outcome.is_open() {
        return State::Known(leg.balance);
    }
    // Inside a run of placed ops the balance depends on the order the search
    // chose among them, so only the last one's is a fact.
    let next = keys
        .get(index.position(a, seq + 1))
        .filter(|&&k| key_seq(k) == seq + 1);
    if next
        .and_then(|&k| decode(h, key_entry(k)))
        .is_some_and(|l| l.outcome.is_open())
    {
        return State::Open;
    }
    match placed.binary_search_by_key(&leg.op, |p| p.op) {
        Ok(i) if leg.target => State::Known(placed[i].to_balance),
        Ok(i) => State::Known(placed[i].balance),
        Err(_) => State::Open,
    }
}
