//! Splits a one-clock history over several processes, as if each had sent
//! its share of the ops: for the merge's tests and the P14 bench, which need
//! several processes' histories of one correct run.

use bank_checker::{AccountState, Duplicate, History, TransferLeg};

/// Splits a one-clock history over `n` processes (ops, with their legs and
/// duplicates, round-robin; reads too); process 0 keeps the final states.
/// Invalid calls are left out (synthetic histories have none).
pub fn split(h: &History, n: usize) -> Vec<History> {
    let mut parts: Vec<History> = (0..n)
        .map(|p| History {
            accounts: h
                .accounts
                .iter()
                .map(|a| match p {
                    0 => a.clone(),
                    _ => AccountState::opened(a.account_id.clone(), a.initial_balance),
                })
                .collect(),
            ..History::default()
        })
        .collect();
    let mut new_index = vec![(0usize, 0u32); h.ops.len()];
    for (i, op) in h.ops.iter().enumerate() {
        let part = &mut parts[i % n];
        new_index[i] = (i % n, part.ops.len() as u32);
        part.ops.push(*op);
    }
    for leg in &h.transfers {
        let (p, j) = new_index[leg.op as usize];
        parts[p].transfers.push(TransferLeg { op: j, ..*leg });
    }
    for d in &h.duplicates {
        let (p, j) = new_index[d.op as usize];
        parts[p].duplicates.push(Duplicate { op: j, ..*d });
    }
    for (i, r) in h.reads.iter().enumerate() {
        parts[i % n].reads.push(*r);
    }
    parts
}
