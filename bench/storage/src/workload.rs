//! The records every engine makes durable, shaped like the server's op
//! record (account id, request id, kind, amount, outcome, balance, sequence:
//! ~100 bytes framed), and the in-memory ledger a recovery rebuilds from
//! them. Deterministic: record `n` of thread `t` is always the same.

use std::collections::HashMap;

/// Accounts the records spread over (the accounts table's size).
pub const ACCOUNTS: u64 = 1_000;
/// Largest amount of one op, in cents.
const MAX_AMOUNT: u64 = 10_000;

/// One op record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    pub account: String,
    /// UUID-shaped, 36 characters, random order (as clients make them).
    pub request_id: String,
    /// 0 deposit, 1 withdrawal.
    pub kind: u8,
    pub amount: u64,
    /// 0 approved.
    pub outcome: u8,
    pub balance: u64,
    pub sequence: u64,
}

/// What a ledger keeps of an op, by request id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub kind: u8,
    pub amount: u64,
    pub outcome: u8,
    pub balance: u64,
    pub sequence: u64,
}

/// SplitMix64: a fixed, fast bit mixer (deterministic pseudo-randomness).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Record `n` of thread `thread`.
pub fn record(thread: u64, n: u64) -> Rec {
    let key = mix((thread << 40) | n);
    let (a, b) = (mix(key), mix(key ^ 1));
    Rec {
        account: format!("acct-{:06}", key % ACCOUNTS),
        request_id: format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        ),
        kind: (key & 1) as u8,
        amount: 1 + (a % MAX_AMOUNT),
        outcome: 0,
        balance: b % 1_000_000_000,
        sequence: n + 1,
    }
}

/// The state a restart must rebuild: balances and sequences per account,
/// and every request id's stored result.
#[derive(Debug, Default)]
pub struct Ledger {
    pub accounts: HashMap<String, (u64, u64)>,
    pub ids: HashMap<String, (String, Stored)>,
}

impl Ledger {
    /// Applies one recovered record.
    pub fn apply(&mut self, rec: Rec) {
        self.accounts
            .insert(rec.account.clone(), (rec.balance, rec.sequence));
        let stored = Stored {
            kind: rec.kind,
            amount: rec.amount,
            outcome: rec.outcome,
            balance: rec.balance,
            sequence: rec.sequence,
        };
        self.ids.insert(rec.request_id, (rec.account, stored));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_deterministic_and_uuid_shaped() {
        assert_eq!(record(3, 7), record(3, 7));
        assert_ne!(record(3, 7).request_id, record(3, 8).request_id);
        assert_eq!(record(0, 0).request_id.len(), 36);
        assert_eq!(record(0, 0).account.len(), 11);
    }
}
