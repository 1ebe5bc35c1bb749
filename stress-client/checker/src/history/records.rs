//! The recorded history a run hands to the checker: compact per-op records
//! (48 bytes each, transfers' second leg in a side table), the balance reads
//! and duplicate sends made under load, the calls that break the contract on
//! purpose, and each account's initial and final state. Times are
//! nanoseconds on one monotonic clock.

use serde::Serialize;

/// Index of an account in [`History::accounts`].
pub type AccountIdx = u32;

/// What an op asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[repr(u8)]
pub enum Kind {
    Deposit,
    Withdraw,
    /// A transfer out of `Op::account`; its target leg is in [`History::transfers`].
    Transfer,
}

/// What the client learned about an op's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[repr(u8)]
pub enum Outcome {
    Approved,
    InsufficientFunds,
    /// Known never to take effect (the server said so, e.g. after a fence).
    NotApplied,
    /// Nobody knows: no reply and `GetOperation` could not settle it. The
    /// checker treats it like Jepsen's `:info`: it may or may not have happened.
    /// Record it with `balance`, `sequence` (and the leg's `to_balance`,
    /// `to_sequence`) set to 0 and `recv_ns` set to `u64::MAX`.
    Unknown,
    /// The server answered an outcome outside the contract (not one of the
    /// three). A `protocol` violation; for the rest of the check the op is
    /// treated like an unknown one. Record it like `Unknown`.
    Invalid,
}

impl Outcome {
    /// True for the outcomes that took a sequence number on every account the
    /// op touched (approved or denied); only these carry balances to check.
    pub fn took_sequence(self) -> bool {
        matches!(self, Outcome::Approved | Outcome::InsufficientFunds)
    }

    /// True when nobody knows whether the op took effect (`Unknown`, or an
    /// `Invalid` answer that settles nothing): it may have, exactly once.
    pub fn is_open(self) -> bool {
        matches!(self, Outcome::Unknown | Outcome::Invalid)
    }
}

/// One recorded op. `balance`/`sequence` are meaningful only when the outcome
/// is `Approved` or `InsufficientFunds` (the op took a sequence number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    /// The account the op ran on (a transfer's source).
    pub account: AccountIdx,
    pub kind: Kind,
    pub outcome: Outcome,
    /// True when the outcome came from `GetOperation` after the call failed.
    pub resolved: bool,
    /// What else the answer said: [`Op::REPLAYED`], [`Op::WRONG_ID`],
    /// [`Op::NOT_FOUND`], [`Op::FROM_COPY`], [`Op::LOOKUP_NOT_FOUND`],
    /// [`Op::ABORTED`]; and what the op asked: [`Op::WAITS`].
    pub flags: u8,
    /// Amount in minor units.
    pub amount: u64,
    /// When the op was sent and when its reply arrived (`u64::MAX`: never).
    /// For an op settled by `GetOperation`, `recv_ns` is when that lookup's
    /// reply arrived: the op surely finished by then, which keeps the
    /// real-time check sound. An op retried under the same request id is one
    /// record, sent when its first attempt was.
    pub send_ns: u64,
    pub recv_ns: u64,
    /// Reported balance right after the op, and the sequence number it took.
    pub balance: u64,
    pub sequence: u64,
}

impl Op {
    /// The answer carried `replayed = true`.
    pub const REPLAYED: u8 = 1;
    /// The answer's `request_id` was not the one sent.
    pub const WRONG_ID: u8 = 2;
    /// The call failed with NOT_FOUND although the account's opening was
    /// acknowledged (the outcome is then `Unknown`).
    pub const NOT_FOUND: u8 = 4;
    /// The original call failed and the answer is that of its duplicate send
    /// (same request id), so `replayed` may be either value.
    pub const FROM_COPY: u8 = 8;
    /// The op is a withdrawal sent with `wait_for_funds`: the only kind of
    /// op whose request id may be answered ABORTED.
    pub const WAITS: u8 = 16;
    /// `GetOperation` about the op (on the account the run opened) answered
    /// NOT_FOUND, which the contract keeps for unknown accounts.
    pub const LOOKUP_NOT_FOUND: u8 = 32;
    /// The op's own call, or a `GetOperation` about it, answered ABORTED.
    pub const ABORTED: u8 = 64;

    /// True when `flag` is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

// The driver keeps millions of these in memory; growing past 48 bytes would
// break the checker's memory budget, so it fails the build instead.
const _: () = assert!(std::mem::size_of::<Op>() <= 48);

/// The target leg of a transfer, kept out of [`Op`] so ops stay small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferLeg {
    /// Index into [`History::ops`] of the transfer.
    pub op: u32,
    pub to_account: AccountIdx,
    pub to_balance: u64,
    pub to_sequence: u64,
}

/// An account's state before the run and as read after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    pub account_id: String,
    pub initial_balance: u64,
    /// From `GetBalance` after the run; `None` if it could not be read.
    pub final_balance: Option<u64>,
    pub final_sequence: Option<u64>,
    /// The final read answered NOT_FOUND: the server lost an account whose
    /// opening it had acknowledged.
    pub final_not_found: bool,
}

impl AccountState {
    /// An account opened with `initial_balance`, final state not yet read.
    pub fn opened(account_id: String, initial_balance: u64) -> AccountState {
        AccountState {
            account_id,
            initial_balance,
            final_balance: None,
            final_sequence: None,
            final_not_found: false,
        }
    }
}

/// A `GetBalance` made under load: the state it saw and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    pub account: AccountIdx,
    /// True when the read answered NOT_FOUND (then `balance` and `sequence` are 0).
    pub not_found: bool,
    pub send_ns: u64,
    pub recv_ns: u64,
    pub balance: u64,
    pub sequence: u64,
}

/// A second send of an op with the same request id, and what it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duplicate {
    /// Index into [`History::ops`] of the op it repeats.
    pub op: u32,
    /// True when both copies went out at once (either may be the one the
    /// server saw first); false when the copy was sent after the first answer.
    pub at_once: bool,
    /// `Unknown` when the copy got an error status (see `aborted`).
    pub outcome: Outcome,
    /// The copy was answered ABORTED, which the contract allows only while
    /// the original, a withdrawal with `wait_for_funds`, waits for funds.
    pub aborted: bool,
    /// [`Op::REPLAYED`] and [`Op::WRONG_ID`] of the copy's answer ([`Op::ABORTED`]
    /// may be set too; `aborted` is what counts).
    pub flags: u8,
    pub send_ns: u64,
    pub recv_ns: u64,
    pub balance: u64,
    pub sequence: u64,
    pub to_balance: u64,
    pub to_sequence: u64,
}

impl Duplicate {
    /// The copy of op `op` (number `index`, transfer leg `leg`) answered as
    /// a correct server answers a retry: the same result, `replayed = true`.
    /// Sent at once with the original, or just after its answer.
    pub fn replay_of(index: u32, op: &Op, leg: Option<&TransferLeg>, at_once: bool) -> Duplicate {
        let send_ns = if at_once {
            op.send_ns
        } else {
            op.recv_ns.saturating_add(1)
        };
        Duplicate {
            op: index,
            at_once,
            outcome: op.outcome,
            aborted: false,
            flags: Op::REPLAYED,
            send_ns,
            recv_ns: send_ns.max(op.recv_ns).saturating_add(1),
            balance: op.balance,
            sequence: op.sequence,
            to_balance: leg.map_or(0, |l| l.to_balance),
            to_sequence: leg.map_or(0, |l| l.to_sequence),
        }
    }
}

/// What an invalid call (`--invalid-ratio`) got wrong on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[repr(u8)]
pub enum Invalid {
    /// Amount 0: INVALID_ARGUMENT.
    ZeroAmount,
    /// An account that was never opened: NOT_FOUND (or PERMISSION_DENIED
    /// with a token, see [`InvalidCall::also`]).
    UnknownAccount,
    /// The request id of an op already answered, with another amount:
    /// ALREADY_EXISTS.
    ReusedId,
}

/// A call that breaks the contract on purpose, and the gRPC status code it
/// got. It must be refused with `expected` (or `also`) and change nothing;
/// it takes no sequence number, so one that applied something also shows up
/// as a gap in the account's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCall {
    pub what: Invalid,
    /// The RPC it called (a transfer names `account` as its source).
    pub kind: Kind,
    /// The run's account it named ([`InvalidCall::NO_INDEX`] for an unknown account).
    pub account: AccountIdx,
    /// For [`Invalid::ReusedId`]: the op whose request id it reused.
    pub op: u32,
    pub amount: u64,
    /// The status code the contract asks for, another one it allows
    /// ([`InvalidCall::NO_CODE`]: none), and the one answered (0: OK).
    pub expected: u8,
    pub also: u8,
    pub got: u8,
    pub send_ns: u64,
    pub recv_ns: u64,
}

impl InvalidCall {
    /// `account` or `op` that names nothing.
    pub const NO_INDEX: u32 = u32::MAX;
    /// `also` when no other status is allowed.
    pub const NO_CODE: u8 = u8::MAX;
    /// gRPC codes that say the call was not answered: cancelled, deadline
    /// exceeded, resource exhausted (shed), unavailable, and unknown and
    /// internal, which is what a client sees when the connection breaks
    /// under a call (a server killed mid-run): nothing to judge.
    pub const UNANSWERED: [u8; 6] = [1, 2, 4, 8, 13, 14];

    /// True when the answer was the one the contract asks for.
    pub fn refused_as_expected(&self) -> bool {
        self.got == self.expected || (self.also != Self::NO_CODE && self.got == self.also)
    }

    /// True when the call got no answer to judge (see [`InvalidCall::UNANSWERED`]).
    pub fn unanswered(&self) -> bool {
        !self.refused_as_expected() && Self::UNANSWERED.contains(&self.got)
    }

    /// True when the server answered something the contract forbids.
    pub fn wrong(&self) -> bool {
        !self.refused_as_expected() && !self.unanswered()
    }
}

/// Everything the checker needs.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub accounts: Vec<AccountState>,
    pub ops: Vec<Op>,
    /// Sorted by `op`; one entry per `Kind::Transfer` op.
    pub transfers: Vec<TransferLeg>,
    /// Balance reads made under load, in any order.
    pub reads: Vec<Read>,
    /// Duplicate sends, in any order; at most one per op.
    pub duplicates: Vec<Duplicate>,
    /// Calls that break the contract on purpose, in any order.
    pub invalid: Vec<InvalidCall>,
    /// Which process sent which ops, when the history merges several
    /// (`stress-client check`); empty for one process.
    pub processes: Processes,
}

impl History {
    /// Every send and answer time of the history (ops, reads, duplicate
    /// sends, invalid calls) through `f`; "never" (`u64::MAX`) stays never.
    /// For tests and benches that move or stretch a history in time.
    pub fn map_times(&mut self, f: impl Fn(u64) -> u64) {
        let map = |t: &mut u64| {
            if *t != u64::MAX {
                *t = f(*t);
            }
        };
        let ops = self.ops.iter_mut().map(|o| (&mut o.send_ns, &mut o.recv_ns));
        let reads = self.reads.iter_mut().map(|r| (&mut r.send_ns, &mut r.recv_ns));
        let dups = self
            .duplicates
            .iter_mut()
            .map(|d| (&mut d.send_ns, &mut d.recv_ns));
        let invalid = self.invalid.iter_mut().map(|c| (&mut c.send_ns, &mut c.recv_ns));
        for (send, recv) in ops.chain(reads).chain(dups).chain(invalid) {
            map(send);
            map(recv);
        }
    }
}

/// The processes of a merged history. Their clocks agree only to within a
/// skew, so the merge widened every interval by `widened_ns` on each side
/// (A's answer precedes B's send only where the gap exceeds the skew). Two
/// ops or reads of one process share one clock: between them the checks take
/// the widening back off and keep real-time order exactly (the merge clamps
/// no time, so the widening is exact).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Processes {
    /// The first op of each process but the first, ascending: process `k`
    /// sent ops `op_starts[k - 1] .. op_starts[k]` (process 0 from op 0).
    pub op_starts: Vec<u32>,
    /// The same for [`History::reads`]. Reads are tied to their process only
    /// when it has one entry per entry of `op_starts`; otherwise no read has
    /// a process, and reads keep the widened order even within one.
    pub read_starts: Vec<u32>,
    /// How far every interval was widened on each side, in ns.
    pub widened_ns: u64,
}

impl Processes {
    /// How many processes there are (at least one).
    pub fn count(&self) -> usize {
        self.op_starts.len() + 1
    }

    /// The process that sent op `op`.
    pub fn of_op(&self, op: u32) -> usize {
        self.op_starts.partition_point(|&start| start <= op)
    }

    /// The process that sent read `read` (an index into [`History::reads`]),
    /// if reads are tied to their processes.
    pub fn of_read(&self, read: u32) -> Option<usize> {
        (self.read_starts.len() == self.op_starts.len())
            .then(|| self.read_starts.partition_point(|&start| start <= read))
    }

    pub fn same_process_slack_ns(&self) -> u64 {
        self.widened_ns.saturating_mul(2)
    }
}
