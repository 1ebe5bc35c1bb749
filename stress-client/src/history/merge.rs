//! Several processes' histories of one run as one history for the checker.
//! Accounts are matched by id, op numbers shifted, and every time moved onto
//! one time line by each process's wall-clock anchor. The clocks of two
//! machines differ by up to `max_clock_skew`, so each interval is widened by
//! half of it on both sides: then A's answer precedes B's send only where the
//! gap exceeds the skew, and no order the clocks cannot vouch for is used.
//! Within one process the checker takes the widening back off (the merged
//! history says which ops and reads each process sent:
//! `History::processes`), so real-time order between two of them is kept
//! exactly, as in the live run; for that no time may be clamped at the
//! line's start (`lift_ns`).

use std::collections::HashMap;
use std::time::Duration;

use bank_checker::{AccountState, History, InvalidCall};

use super::read::Parsed;

/// Several files as one.
#[derive(Debug, Clone, Default)]
pub struct Merged {
    pub history: History,
    /// (op number, request id) of the ops of unknown outcome that have one,
    /// sorted by op number.
    pub request_ids: Vec<(u32, String)>,
}

/// Merges `files` (one run, distinct process ids: checked by the caller).
/// One file is returned as it is: its clock is its own, nothing to align.
pub fn merge(mut files: Vec<(String, Parsed)>, max_clock_skew: Duration) -> Result<Merged, String> {
    if files.len() == 1 {
        let one = files.pop().expect("one file").1;
        return Ok(Merged {
            history: one.history,
            request_ids: one.request_ids,
        });
    }
    let half_ns = u64::try_from(max_clock_skew.as_nanos().div_ceil(2)).unwrap_or(u64::MAX / 4);
    let base_wall = files
        .iter()
        .map(|(_, p)| p.header.start_anchor.wall_unix_ns)
        .min()
        .unwrap_or(0);
    let mut out = Merger {
        total: Counts::of(&files),
        ..Merger::default()
    };
    // Process time t is wall time base + (wall - base) + (t - mono) on the
    // merged line; `half_ns` more keeps the widened sends above zero, and
    // `lift_ns` more does for a file with times before its own anchor: no
    // time is clamped, so the widening is exact and can be taken back off.
    let offset = |p: &Parsed| {
        let a = p.header.start_anchor;
        let wall = i128::from(a.wall_unix_ns) - i128::from(base_wall);
        wall - i128::from(a.mono_ns) + i128::from(half_ns)
    };
    let lowest = files
        .iter()
        .map(|(_, p)| i128::from(earliest_send(&p.history)) + offset(p) - i128::from(half_ns))
        .min()
        .unwrap_or(0);
    let lift_ns = (-lowest).max(0);
    for (k, (name, parsed)) in files.into_iter().enumerate() {
        let offset_ns = offset(&parsed) + lift_ns;
        let first_op = out.m.history.ops.len() as u32;
        if k > 0 {
            out.m.history.processes.op_starts.push(first_op);
            let first_read = u32::try_from(out.m.history.reads.len()).unwrap_or(u32::MAX);
            out.m.history.processes.read_starts.push(first_read);
        }
        out.add(&name, parsed.history, Clock { offset_ns, half_ns })?;
        // `add` checked that the ops, shifted, still fit in 32 bits.
        let shifted = parsed.request_ids.into_iter().map(|(op, id)| (op + first_op, id));
        out.m.request_ids.extend(shifted);
    }
    if u32::try_from(out.m.history.reads.len()).is_err() {
        // Read numbers past 32 bits: no read is tied to its process (the
        // checker then keeps the widened order between all reads).
        out.m.history.processes.read_starts.clear();
    }
    out.m.history.processes.widened_ns = half_ns;
    Ok(out.m)
}

/// The earliest send in `h` (`u64::MAX` when it sent nothing).
fn earliest_send(h: &History) -> u64 {
    let ops = h.ops.iter().map(|o| o.send_ns);
    let reads = h.reads.iter().map(|r| r.send_ns);
    let dups = h.duplicates.iter().map(|d| d.send_ns);
    let calls = h.invalid.iter().map(|c| c.send_ns);
    ops.chain(reads)
        .chain(dups)
        .chain(calls)
        .min()
        .unwrap_or(u64::MAX)
}

/// How one process's times map onto the merged time line.
#[derive(Debug, Clone, Copy)]
struct Clock {
    /// Added to a process time to put it on the merged line.
    offset_ns: i128,
    half_ns: u64,
}

impl Clock {
    /// On the merged line, kept within 0 .. u64::MAX - 1 (MAX means never).
    fn at(&self, t: u64) -> u64 {
        let moved = (i128::from(t) + self.offset_ns).clamp(0, i128::from(u64::MAX - 1));
        u64::try_from(moved).unwrap_or(0)
    }
    /// A send, moved half the skew earlier.
    fn send(&self, t: u64) -> u64 {
        self.at(t).saturating_sub(self.half_ns)
    }
    /// An answer, moved half the skew later (never stays never).
    fn recv(&self, t: u64) -> u64 {
        match t {
            u64::MAX => u64::MAX,
            t => self.at(t).saturating_add(self.half_ns).min(u64::MAX - 1),
        }
    }
}

#[derive(Default)]
struct Merger {
    m: Merged,
    by_id: HashMap<String, u32>,
    /// How many records of each kind all the files hold, so the merged
    /// vectors are sized once.
    total: Counts,
}

/// How many records of each kind.
#[derive(Default)]
struct Counts {
    ops: usize,
    transfers: usize,
    reads: usize,
    duplicates: usize,
    invalid: usize,
}

impl Counts {
    fn of(files: &[(String, Parsed)]) -> Counts {
        let mut c = Counts::default();
        for (_, p) in files {
            let h = &p.history;
            c.ops += h.ops.len();
            c.transfers += h.transfers.len();
            c.reads += h.reads.len();
            c.duplicates += h.duplicates.len();
            c.invalid += h.invalid.len();
        }
        c
    }
}

impl Merger {
    fn add(&mut self, name: &str, mut h: History, c: Clock) -> Result<(), String> {
        let map = self.accounts(name, std::mem::take(&mut h.accounts))?;
        let offset =
            u32::try_from(self.m.history.ops.len()).map_err(|_| "more than 2^32 ops in all".to_owned())?;
        let shift_op = |op: u32| {
            op.checked_add(offset)
                .ok_or("more than 2^32 ops in all".to_owned())
        };
        if u32::try_from(self.m.history.ops.len() + h.ops.len()).is_err() {
            return Err("more than 2^32 ops in all".into());
        }
        // Each record is moved onto the merged line in place, then the
        // vectors are appended whole (the first file's are taken as they are).
        for op in &mut h.ops {
            op.account = map[op.account as usize];
            (op.send_ns, op.recv_ns) = (c.send(op.send_ns), c.recv(op.recv_ns));
        }
        for leg in &mut h.transfers {
            (leg.op, leg.to_account) = (shift_op(leg.op)?, map[leg.to_account as usize]);
        }
        for r in &mut h.reads {
            (r.account, r.send_ns, r.recv_ns) =
                (map[r.account as usize], c.send(r.send_ns), c.recv(r.recv_ns));
        }
        for d in &mut h.duplicates {
            (d.op, d.send_ns, d.recv_ns) = (shift_op(d.op)?, c.send(d.send_ns), c.recv(d.recv_ns));
        }
        for call in &mut h.invalid {
            if call.account != InvalidCall::NO_INDEX {
                call.account = map[call.account as usize];
            }
            if call.op != InvalidCall::NO_INDEX {
                call.op = shift_op(call.op)?;
            }
            (call.send_ns, call.recv_ns) = (c.send(call.send_ns), c.recv(call.recv_ns));
        }
        let (into, all) = (&mut self.m.history, &self.total);
        take_or_append(&mut into.ops, h.ops, all.ops);
        take_or_append(&mut into.transfers, h.transfers, all.transfers);
        take_or_append(&mut into.reads, h.reads, all.reads);
        take_or_append(&mut into.duplicates, h.duplicates, all.duplicates);
        take_or_append(&mut into.invalid, h.invalid, all.invalid);
        Ok(())
    }

    /// Maps the file's accounts onto the merged ones (by id), adding new ones;
    /// opening balances must agree, and so must final states read twice.
    fn accounts(&mut self, name: &str, accounts: Vec<AccountState>) -> Result<Vec<u32>, String> {
        let mut map = Vec::with_capacity(accounts.len());
        for a in accounts {
            let index = match self.by_id.get(&a.account_id) {
                Some(&i) => i,
                None => {
                    let i = u32::try_from(self.m.history.accounts.len())
                        .map_err(|_| "more than 2^32 accounts".to_owned())?;
                    self.by_id.insert(a.account_id.clone(), i);
                    self.m
                        .history
                        .accounts
                        .push(AccountState::opened(a.account_id.clone(), a.initial_balance));
                    i
                }
            };
            let have = &mut self.m.history.accounts[index as usize];
            if have.initial_balance != a.initial_balance {
                return Err(format!(
                    "{name}: account {} opens with {}, another history says {}",
                    a.account_id, a.initial_balance, have.initial_balance
                ));
            }
            take_final(name, have, &a)?;
            map.push(index);
        }
        Ok(map)
    }
}

/// Appends `from` to `into`, or takes it whole when `into` is empty (no
/// copy) and makes room for `total` in all at once (one reallocation).
fn take_or_append<T>(into: &mut Vec<T>, mut from: Vec<T>, total: usize) {
    match into.is_empty() {
        true => {
            *into = from;
            into.reserve_exact(total.saturating_sub(into.len()));
        }
        false => into.append(&mut from),
    }
}

/// Takes `from`'s final state into `into` when it has one.
fn take_final(name: &str, into: &mut AccountState, from: &AccountState) -> Result<(), String> {
    let told = from.final_balance.is_some() || from.final_not_found;
    if !told {
        return Ok(());
    }
    let had = into.final_balance.is_some() || into.final_not_found;
    let same = (into.final_balance, into.final_sequence, into.final_not_found)
        == (from.final_balance, from.final_sequence, from.final_not_found);
    if had && !same {
        return Err(format!(
            "{name}: account {} has another final state than an earlier history",
            from.account_id
        ));
    }
    (into.final_balance, into.final_sequence, into.final_not_found) =
        (from.final_balance, from.final_sequence, from.final_not_found);
    Ok(())
}
