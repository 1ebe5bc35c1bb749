//! A small builder for hand-written histories: ops are given in the order
//! they ran, each sent and answered before the next is sent unless a test
//! sets the times itself.

#![allow(dead_code)]

use bank_checker::{AccountState, Duplicate, History, Kind, Op, Outcome, Read, TransferLeg};

pub use bank_checker::Kind::{Deposit, Transfer, Withdraw};
#[allow(unused_imports)]
pub use bank_checker::Outcome::{Approved, InsufficientFunds, Invalid, NotApplied, Unknown};

/// Builds a [`History`] op by op.
pub struct Builder {
    pub h: History,
    clock: u64,
}

impl Builder {
    /// Accounts `a`, `b`, `c`... with these opening balances and no final state.
    pub fn new(initial: &[u64]) -> Builder {
        let accounts = initial
            .iter()
            .enumerate()
            .map(|(i, &b)| AccountState::opened(((b'a' + i as u8) as char).to_string(), b))
            .collect();
        Builder {
            h: History {
                accounts,
                ..History::default()
            },
            clock: 0,
        }
    }

    /// Records a deposit or withdrawal that took `seq` and reported `balance`.
    pub fn op(
        &mut self,
        account: u32,
        kind: Kind,
        outcome: Outcome,
        amount: u64,
        seq: u64,
        balance: u64,
    ) -> &mut Self {
        self.clock += 10;
        self.h.ops.push(Op {
            account,
            kind,
            outcome,
            resolved: false,
            flags: 0,
            amount,
            send_ns: self.clock,
            recv_ns: self.clock + 5,
            balance,
            sequence: seq,
        });
        self
    }

    /// Records a transfer: `(seq, balance)` on the source, then on the target.
    pub fn transfer(
        &mut self,
        from: u32,
        to: u32,
        outcome: Outcome,
        amount: u64,
        source: (u64, u64),
        target: (u64, u64),
    ) -> &mut Self {
        let op = self.h.ops.len() as u32;
        self.op(from, Transfer, outcome, amount, source.0, source.1);
        self.h.transfers.push(TransferLeg {
            op,
            to_account: to,
            to_balance: target.1,
            to_sequence: target.0,
        });
        self
    }

    /// Records an op whose fate stayed unknown (no reply, no sequence).
    pub fn unknown(&mut self, account: u32, kind: Kind, amount: u64) -> &mut Self {
        self.op(account, kind, Unknown, amount, 0, 0);
        self.last().recv_ns = u64::MAX;
        self
    }

    /// Records an unknown transfer (with its leg, as the driver must).
    pub fn unknown_transfer(&mut self, from: u32, to: u32, amount: u64) -> &mut Self {
        self.transfer(from, to, Unknown, amount, (0, 0), (0, 0));
        self.last().recv_ns = u64::MAX;
        self
    }

    /// Marks the last op as settled by `GetOperation`, its lookup answered late.
    pub fn resolved(&mut self) -> &mut Self {
        self.clock += 1_000;
        let clock = self.clock;
        let op = self.last();
        op.resolved = true;
        op.flags |= Op::REPLAYED;
        op.recv_ns = clock;
        self
    }

    /// Sets the last op's send and reply times.
    pub fn times(&mut self, send_ns: u64, recv_ns: u64) -> &mut Self {
        let op = self.last();
        (op.send_ns, op.recv_ns) = (send_ns, recv_ns);
        self
    }

    /// Sets an account's state as read after the run.
    pub fn finals(&mut self, account: usize, balance: u64, seq: u64) -> &mut Self {
        let state = &mut self.h.accounts[account];
        state.final_balance = Some(balance);
        state.final_sequence = Some(seq);
        self
    }

    /// Records a GetBalance of `account` that saw (`seq`, `balance`), sent
    /// and answered between the last op and the next.
    pub fn read(&mut self, account: u32, seq: u64, balance: u64) -> &mut Self {
        self.clock += 10;
        self.h.reads.push(Read {
            account,
            not_found: false,
            send_ns: self.clock,
            recv_ns: self.clock + 5,
            balance,
            sequence: seq,
        });
        self
    }

    /// Sets the last read's send and reply times.
    pub fn read_times(&mut self, send_ns: u64, recv_ns: u64) -> &mut Self {
        let r = self.h.reads.last_mut().expect("a read was recorded");
        (r.send_ns, r.recv_ns) = (send_ns, recv_ns);
        self
    }

    /// Records a second send of the last op, answered as a replay of it.
    pub fn duplicate(&mut self, at_once: bool) -> &mut Self {
        let i = self.h.ops.len() - 1;
        let op = self.h.ops[i];
        let leg = self.h.transfers.last().filter(|l| l.op as usize == i);
        let copy = Duplicate::replay_of(i as u32, &op, leg, at_once);
        self.clock = self.clock.max(copy.recv_ns);
        self.h.duplicates.push(copy);
        self
    }

    /// The last duplicate send, to change what it answered.
    pub fn last_duplicate(&mut self) -> &mut Duplicate {
        self.h.duplicates.last_mut().expect("a duplicate was recorded")
    }

    /// Sets flags on the last op.
    pub fn flags(&mut self, flags: u8) -> &mut Self {
        self.last().flags |= flags;
        self
    }

    /// The history built so far.
    pub fn build(&self) -> History {
        self.h.clone()
    }

    /// The last op, to change it by hand.
    pub fn last_op(&mut self) -> &mut Op {
        self.last()
    }

    fn last(&mut self) -> &mut Op {
        self.h.ops.last_mut().expect("an op was recorded")
    }
}

/// Asserts that `kind` was found (the verdict failed) and returns its first detail.
pub fn found(report: &bank_checker::Report, kind: bank_checker::ViolationKind) -> String {
    assert!(report.count(kind) >= 1, "no {kind} in {report:#?}");
    assert_eq!(report.verdict, bank_checker::Verdict::Failed);
    let v = report.violations.iter().find(|v| v.kind == kind);
    v.map(|v| v.detail.clone()).unwrap_or_default()
}

/// Checks `b`'s history, which must pass; its report.
pub fn passes(b: &Builder) -> bank_checker::Report {
    let report = bank_checker::check(&b.build());
    assert_eq!(report.verdict, bank_checker::Verdict::Passed, "{report:#?}");
    report
}
