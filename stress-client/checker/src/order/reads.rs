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
//!
//! In a merged history "answered before" between a read and an op or read
//! of another process holds only where the widened times say so; between
//! two of one process it is decided on their own clock (`own`): each
//! account has a timeline per process too, and reads going backwards are
//! looked for per process as well.

use crate::history::leg::decode;
use crate::history::leg::{key_entry, key_seq};
use crate::history::{History, Read};
use crate::order::index::Index;
use crate::order::index::Placed;
use crate::order::own;
use crate::order::timeline::Timeline;
use crate::report::describe;
use crate::report::{Sink, ViolationKind};

/// Checks every read, account by account.
pub(crate) fn check(h: &History, index: &Index, placed: &[Placed], sink: &mut Sink) {
    let mut order: Vec<u32> = (0..h.reads.len() as u32).collect();
    order.sort_unstable_by_key(|&r| h.reads[r as usize].account);
    let mut current: Option<(u32, Times)> = None;
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
            current = Some((read.account, Times::build(h, index, read.account as usize)));
        }
        if let Some((_, times)) = current.as_ref() {
            check_read(h, (index, placed), times, r, sink);
        }
    }
}

/// One account's timelines: of all its ops, and of each process's (merged
/// histories whose reads are tied to their processes; else none).
struct Times {
    all: Timeline,
    own: Vec<Timeline>,
}

impl Times {
    fn build(h: &History, index: &Index, a: usize) -> Times {
        Times {
            all: Timeline::build(h, index, a),
            own: match own::reads_apply(h) {
                true => Timeline::build_per_process(h, index, a),
                false => Vec::new(),
            },
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
    let ids: Vec<u32> = (0..h.reads.len() as u32).filter(valid).collect();
    let widened = backwards(
        h,
        ids.clone(),
        |r| Some(u64::from(h.reads[r as usize].account)),
        0,
    );
    for &pair in &widened {
        report_backwards(h, pair, 0, sink);
    }
    if !own::reads_apply(h) {
        return;
    }
    // Two reads of one process, on its clock: the widening taken back off.
    let group = |r: u32| {
        let p = h.processes.of_read(r)? as u64;
        Some(u64::from(h.reads[r as usize].account) << 32 | p)
    };
    let mut blamed: Vec<u32> = widened.iter().map(|&(_, later)| later).collect();
    blamed.sort_unstable();
    let slack = h.processes.same_process_slack_ns();
    for pair in backwards(h, ids, group, slack) {
        if blamed.binary_search(&pair.1).is_err() {
            report_backwards(h, pair, h.processes.widened_ns, sink);
        }
    }
}

/// The pairs (earlier, later) of reads `ids` in one group where `later`
/// was sent (its send plus `slack_ns`) after `earlier` was answered, yet saw
/// an older sequence; reads without a group are left out. Reads sorted by
/// send time meet the reads answered before each send through one pointer
/// into them sorted by reply time, keeping the highest sequence seen so far.
fn backwards(
    h: &History,
    ids: Vec<u32>,
    group: impl Fn(u32) -> Option<u64>,
    slack_ns: u64,
) -> Vec<(u32, u32)> {
    let read = |r: u32| &h.reads[r as usize];
    let keyed = |time: fn(&Read) -> u64, plus: u64| {
        let mut v: Vec<(u64, u64, u32)> = ids
            .iter()
            .filter_map(|&r| Some((group(r)?, time(read(r)).saturating_add(plus), r)))
            .collect();
        v.sort_unstable();
        v
    };
    let (by_send, by_recv) = (keyed(|r| r.send_ns, slack_ns), keyed(|r| r.recv_ns, 0));
    let mut pairs = Vec::new();
    let mut next = 0;
    // The read with the highest sequence among those answered so far.
    let mut newest: Option<(u64, u32)> = None;
    for &(g, sent, r) in &by_send {
        if newest.is_some_and(|(ng, _)| ng != g) {
            newest = None;
        }
        while let Some(&(eg, _, e)) = by_recv.get(next).filter(|&&(eg, t, _)| (eg, t) < (g, sent)) {
            next += 1;
            if eg == g && newest.is_none_or(|(_, n)| read(n).sequence < read(e).sequence) {
                newest = Some((eg, e));
            }
        }
        if let Some((_, n)) = newest.filter(|&(_, n)| read(n).sequence > read(r).sequence) {
            pairs.push((n, r));
        }
    }
    pairs
}

/// Reports read `later` seeing an older state than `earlier`, answered
/// before it was sent; `own_ns`: both of one process, the widening to take
/// off the times shown (0 otherwise).
fn report_backwards(h: &History, (earlier, later): (u32, u32), own_ns: u64, sink: &mut Sink) {
    let (e, l) = (&h.reads[earlier as usize], &h.reads[later as usize]);
    let id = describe::account(h, l.account as usize);
    let clock = if own_ns > 0 {
        ", of the same process (one clock)"
    } else {
        ""
    };
    sink.report(ViolationKind::StaleRead, &id, || {
        format!(
            "read #{later} (GetBalance sent at {} ns) saw seq {} (balance {}), but read #{earlier} (GetBalance answered at {} ns, before it was sent{clock}) had already seen seq {} (balance {}): two reads went backwards (stale read)",
            l.send_ns.saturating_add(own_ns), l.sequence, l.balance, e.recv_ns.saturating_sub(own_ns), e.sequence, e.balance
        )
    });
}

/// Checks read `r`, of an existing account.
fn check_read(h: &History, (index, placed): (&Index, &[Placed]), times: &Times, r: u32, sink: &mut Sink) {
    let read = &h.reads[r as usize];
    let a = read.account as usize;
    let id = describe::account(h, a);
    let seen = read.sequence;
    if stale(read, &times.all, 0, &id, sink) {
        return;
    }
    let own = h.processes.of_read(r).and_then(|p| times.own.get(p));
    if own.is_some_and(|t| stale(read, t, h.processes.widened_ns, &id, sink)) {
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

/// Reports `read` if it missed an op of `timeline` answered before it was
/// sent, or saw one sent after it was answered; true when it did. `own_ns`:
/// the timeline holds the read's own process's ops, whose times and the
/// read's are compared with the widening (this much on each side) taken
/// off; 0 for the widened order.
fn stale(read: &Read, timeline: &Timeline, own_ns: u64, id: &str, sink: &mut Sink) -> bool {
    let seen = read.sequence;
    let (sent, answered) = (
        read.send_ns.saturating_add(own_ns),
        read.recv_ns.saturating_sub(own_ns),
    );
    // On one clock an op's widened reply before `sent + own_ns` is a reply before `sent`.
    let clock = if own_ns > 0 { " by the same process" } else { "" };
    let floor = timeline.answered_before(sent.saturating_add(own_ns));
    if seen < floor {
        sink.report(ViolationKind::StaleRead, id, || {
            format!("GetBalance sent at {sent} ns saw seq {seen} (balance {}), but seq {floor} had already been answered{clock} before the read was sent (stale read)", read.balance)
        });
        return true;
    }
    let later = timeline
        .sent_after(answered.saturating_sub(own_ns))
        .filter(|&s| s <= seen);
    if let Some(later) = later {
        sink.report(ViolationKind::StaleRead, id, || {
            format!("GetBalance answered at {answered} ns saw seq {seen}, which includes seq {later}, an op sent{clock} only after the read was answered (read from the future)")
        });
        return true;
    }
    false
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
