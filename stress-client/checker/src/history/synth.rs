//! Synthetic histories of a correct server, for the bench and the tests: a
//! single-threaded ledger applies op specs one at a time and records them as
//! a driver would, with overlapping send/reply times around each op's turn,
//! balance reads between ops and duplicate sends answered as replays.

use crate::history::{AccountState, Duplicate, History, InvalidCall, Kind, Op, Outcome, Read, TransferLeg};

/// What the recording client learns about an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// The reply arrived.
    Known,
    /// The reply was lost; `GetOperation` settled it later.
    Resolved,
    /// The op never took effect and the client knows it.
    NotApplied,
    /// The op took effect, but the client never learned so.
    UnknownApplied,
    /// The op never took effect, but the client never learned so.
    UnknownNotApplied,
}

/// One op to simulate.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub kind: Kind,
    /// Taken modulo the number of accounts.
    pub account: u32,
    /// A transfer's target, modulo the number of accounts; moved to the next
    /// account if it equals the source.
    pub to: u32,
    /// Raised to 1 if 0.
    pub amount: u64,
    pub fate: Fate,
    /// How long before its turn the op was sent, and how long after it the
    /// reply arrived, in nanoseconds.
    pub send_lead: u32,
    pub recv_lag: u32,
}

/// Nanoseconds between consecutive ops' turns.
const TURN_NS: u64 = 100;
/// How long after its turn a `GetOperation` lookup settles a lost reply.
const RESOLVE_LAG_NS: u64 = 1_000_000;

/// A correct ledger that records what it does.
#[derive(Debug)]
pub struct Ledger {
    balances: Vec<u64>,
    sequences: Vec<u64>,
    history: History,
    now: u64,
}

impl Ledger {
    /// A ledger with one account per initial balance, named `acct-<i>`.
    pub fn new(initial: &[u64]) -> Ledger {
        let accounts = initial
            .iter()
            .enumerate()
            .map(|(i, &b)| AccountState::opened(format!("acct-{i}"), b))
            .collect();
        Ledger {
            balances: initial.to_vec(),
            sequences: vec![0; initial.len()],
            history: History {
                accounts,
                ..History::default()
            },
            now: RESOLVE_LAG_NS,
        }
    }

    /// Applies one op as a correct server would, and records it.
    pub fn apply(&mut self, spec: &Spec) {
        let n = self.balances.len() as u32;
        if n == 0 {
            return;
        }
        self.now += TURN_NS;
        let from = spec.account % n;
        let mut to = spec.to % n;
        if to == from {
            to = (to + 1) % n;
        }
        let kind = match spec.kind {
            Kind::Transfer if n < 2 => Kind::Withdraw,
            k => k,
        };
        let amount = spec.amount.max(1);
        let mut op = self.blank(spec, kind, from, amount);
        let mut leg = TransferLeg {
            op: self.history.ops.len() as u32,
            to_account: to,
            to_balance: 0,
            to_sequence: 0,
        };
        if matches!(spec.fate, Fate::Known | Fate::Resolved | Fate::UnknownApplied) {
            self.execute(&mut op, &mut leg);
        }
        self.record(spec.fate, op, leg);
    }

    /// The op as sent, before the ledger decides its outcome.
    fn blank(&self, spec: &Spec, kind: Kind, account: u32, amount: u64) -> Op {
        Op {
            account,
            kind,
            outcome: Outcome::NotApplied,
            resolved: false,
            flags: 0,
            amount,
            send_ns: self.now - u64::from(spec.send_lead).min(self.now),
            recv_ns: self.now + u64::from(spec.recv_lag),
            balance: 0,
            sequence: 0,
        }
    }

    /// Runs the op on the ledger, filling in outcome, balances and sequences.
    /// A credit that would overflow is refused before it takes a sequence
    /// number, as the server does, and stays `NotApplied`.
    fn execute(&mut self, op: &mut Op, leg: &mut TransferLeg) {
        let (a, t) = (op.account as usize, leg.to_account as usize);
        let credit_room = |acct: usize| self.balances[acct].checked_add(op.amount).is_some();
        let enough = self.balances[a] >= op.amount;
        op.outcome = match op.kind {
            Kind::Deposit if !credit_room(a) => return,
            Kind::Transfer if enough && !credit_room(t) => return,
            Kind::Deposit => Outcome::Approved,
            _ if enough => Outcome::Approved,
            _ => Outcome::InsufficientFunds,
        };
        let approved = op.outcome == Outcome::Approved;
        if approved {
            match op.kind {
                Kind::Deposit => self.balances[a] += op.amount,
                _ => self.balances[a] -= op.amount,
            }
        }
        (op.balance, op.sequence) = self.take_sequence(a);
        if op.kind == Kind::Transfer {
            if approved {
                self.balances[t] += op.amount;
            }
            (leg.to_balance, leg.to_sequence) = self.take_sequence(t);
        }
    }

    /// Hands out account `a`'s next sequence number with its balance.
    fn take_sequence(&mut self, a: usize) -> (u64, u64) {
        self.sequences[a] += 1;
        (self.balances[a], self.sequences[a])
    }

    /// Records the op as the client saw it.
    fn record(&mut self, fate: Fate, mut op: Op, mut leg: TransferLeg) {
        match fate {
            Fate::Known => {}
            Fate::Resolved => {
                op.resolved = true;
                op.flags |= Op::REPLAYED;
                op.recv_ns = op.recv_ns.max(self.now + RESOLVE_LAG_NS);
            }
            Fate::NotApplied => op.outcome = Outcome::NotApplied,
            Fate::UnknownApplied | Fate::UnknownNotApplied => {
                op.outcome = Outcome::Unknown;
                (op.balance, op.sequence, op.recv_ns) = (0, 0, u64::MAX);
                (leg.to_balance, leg.to_sequence) = (0, 0);
            }
        }
        if op.kind == Kind::Transfer {
            self.history.transfers.push(leg);
        }
        self.history.ops.push(op);
    }

    /// Records a GetBalance of account `a` (modulo the accounts) that took
    /// effect between the last op's turn and the next one's, sent `lead` ns
    /// before that instant and answered `lag` ns after it: with leads and
    /// lags longer than a turn, reads overlap ops and other reads, as reads
    /// from several clients at once do.
    pub fn read(&mut self, a: u32, lead: u32, lag: u32) {
        let n = self.balances.len() as u32;
        if n == 0 {
            return;
        }
        let a = a % n;
        self.now += TURN_NS;
        self.history.reads.push(Read {
            account: a,
            not_found: false,
            send_ns: self.now - u64::from(lead).min(self.now),
            recv_ns: self.now + u64::from(lag),
            balance: self.balances[a as usize],
            sequence: self.sequences[a as usize],
        });
        self.now += TURN_NS;
    }

    /// Records a second send of the last op under its request id, answered
    /// as a replay of the same result (only for ops whose answer is known).
    pub fn duplicate_last(&mut self, at_once: bool) {
        let Some(i) = self.history.ops.len().checked_sub(1) else {
            return;
        };
        let op = self.history.ops[i];
        if op.outcome.is_open() || op.resolved {
            return;
        }
        let leg = self.history.transfers.last().filter(|l| l.op as usize == i);
        let copy = Duplicate::replay_of(i as u32, &op, leg, at_once);
        self.history.duplicates.push(copy);
    }

    /// The history with every account's final state, records in the order
    /// the ops were applied.
    pub fn finish(mut self) -> History {
        let states = self.history.accounts.iter_mut();
        for ((state, &b), &s) in states.zip(&self.balances).zip(&self.sequences) {
            state.final_balance = Some(b);
            state.final_sequence = Some(s);
        }
        self.history
    }
}

/// Reorders a history's records by reply time, as a concurrent driver that
/// records each op when its reply arrives would; legs follow their ops
/// (legs naming no op are dropped).
pub fn in_reply_order(h: History) -> History {
    let mut order: Vec<u32> = (0..h.ops.len() as u32).collect();
    order.sort_by_key(|&i| h.ops[i as usize].recv_ns);
    let mut new_index = vec![0u32; h.ops.len()];
    for (new, &old) in order.iter().enumerate() {
        new_index[old as usize] = new as u32;
    }
    let ops = order.iter().map(|&i| h.ops[i as usize]).collect();
    let mut transfers: Vec<TransferLeg> = h
        .transfers
        .iter()
        .filter_map(|l| {
            Some(TransferLeg {
                op: *new_index.get(l.op as usize)?,
                ..*l
            })
        })
        .collect();
    transfers.sort_by_key(|l| l.op);
    let duplicates = h
        .duplicates
        .iter()
        .filter_map(|d| {
            Some(Duplicate {
                op: *new_index.get(d.op as usize)?,
                ..*d
            })
        })
        .collect();
    let invalid = h
        .invalid
        .iter()
        .map(|c| InvalidCall {
            op: new_index.get(c.op as usize).copied().unwrap_or(c.op),
            ..*c
        })
        .collect();
    History {
        accounts: h.accounts,
        ops,
        transfers,
        reads: h.reads,
        duplicates,
        invalid,
        processes: Default::default(),
    }
}

/// A small, fast, deterministic random number generator (SplitMix64), so
/// the bench needs no dependency.
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 if `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64().checked_rem(n).unwrap_or(0)
    }
}

/// A random spec: mostly known outcomes, some resolved or not applied, and
/// `unknown_per_mille` of unknown outcome (half of them took effect);
/// withdrawals large enough that some are denied.
pub fn random_spec(rng: &mut SplitMix, accounts: u32, unknown_per_mille: u64) -> Spec {
    let kind = match rng.below(20) {
        0..=7 => Kind::Deposit,
        8..=14 => Kind::Withdraw,
        _ => Kind::Transfer,
    };
    let roll = rng.below(1000);
    let fate = match roll {
        0..=9 => Fate::Resolved,
        10..=12 => Fate::NotApplied,
        _ if roll < 13 + unknown_per_mille / 2 => Fate::UnknownApplied,
        _ if roll < 13 + unknown_per_mille => Fate::UnknownNotApplied,
        _ => Fate::Known,
    };
    Spec {
        kind,
        account: rng.below(u64::from(accounts)) as u32,
        to: rng.below(u64::from(accounts)) as u32,
        amount: 1 + rng.below(if kind == Kind::Deposit { 1_000 } else { 1_500 }),
        fate,
        send_lead: rng.below(5_000) as u32,
        recv_lag: rng.below(5_000) as u32,
    }
}

/// A correct history of `ops` random ops over `accounts` accounts (with
/// reads, duplicates and 7 per mille of unknown outcome), in reply order.
pub fn random_history(seed: u64, ops: usize, accounts: u32) -> History {
    random_history_with(seed, ops, accounts, 7)
}

/// As [`random_history`], with `unknown_per_mille` ops of unknown outcome.
pub fn random_history_with(seed: u64, ops: usize, accounts: u32, unknown_per_mille: u64) -> History {
    let mut rng = SplitMix(seed);
    let initial: Vec<u64> = (0..accounts).map(|_| 10_000 + rng.below(10_000)).collect();
    let mut ledger = Ledger::new(&initial);
    for _ in 0..ops {
        ledger.apply(&random_spec(&mut rng, accounts, unknown_per_mille));
        extras(&mut ledger, &mut rng, accounts);
    }
    in_reply_order(ledger.finish())
}

/// After an op, as the stress-client does: with probability 1/50 a duplicate
/// send of it, with 1/20 a read of a random account, most quick, some in
/// flight as long as ops are (several clients reading at once).
pub fn extras(ledger: &mut Ledger, rng: &mut SplitMix, accounts: u32) {
    if rng.below(50) == 0 {
        ledger.duplicate_last(rng.below(2) == 0);
    }
    if rng.below(20) == 0 {
        let a = rng.below(u64::from(accounts)) as u32;
        // Two draws, as ever, so the ops that follow stay the same: one read
        // in four stays in flight as long as an op may.
        let (lead, lag) = (rng.below(5_000) as u32, rng.below(5_000) as u32);
        let quick = lead % 4 != 0;
        let (lead, lag) = if quick {
            (lead % 100, lag % 100)
        } else {
            (lead, lag)
        };
        ledger.read(a, lead, lag);
    }
}
