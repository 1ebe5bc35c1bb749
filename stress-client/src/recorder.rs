//! Per-worker recording: every op goes into a compact history record for the
//! checker and (after warmup) its latencies into samples that fill
//! HdrHistograms when the worker finishes ([`crate::samples`]). Workers own
//! their recorder, so the hot path takes no lock; buffers grow amortised,
//! histograms merge at the end.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bank::v1 as pb;
use bank_checker::{AccountState, Duplicate, History, InvalidCall, Kind, Op, Outcome, Read, TransferLeg};
use hdrhistogram::Histogram;
use tokio::sync::mpsc::UnboundedSender;

use crate::chunked::Chunked;
use crate::errors::ErrorTally;
use crate::histogram::{new_histogram, record_us};
use crate::progress::Live;
use crate::rpc::{PerRpc, Rpc};
use crate::samples::{Histograms, Samples};
use crate::stage_tally::StageTally;
use crate::timeline::Interval;
use crate::workload::Planned;

/// gRPC status codes 0..=16.
pub const STATUS_CODES: usize = 17;

/// Outcome and status counts of one worker.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub approved: u64,
    pub insufficient_funds: u64,
    pub not_applied: u64,
    pub errors: u64,
    /// Replies whose `outcome` was not a known value: a server bug.
    pub bad_outcomes: u64,
    pub by_status: [u64; STATUS_CODES],
    /// Ops that completed after warmup (they make the throughput).
    pub measured: u64,
    /// Extra calls (not money ops): balance reads and their failures,
    /// duplicate sends, those answered ABORTED and those that failed otherwise.
    pub reads: u64,
    pub read_errors: u64,
    pub duplicates: u64,
    pub duplicates_aborted: u64,
    pub duplicate_errors: u64,
    /// Calls that break the contract on purpose: sent, refused with the
    /// contract's status, answered otherwise (a protocol violation), and
    /// not answered (unavailable, shed, cut at the deadline).
    pub invalid_sent: u64,
    pub invalid_refused_as_expected: u64,
    pub invalid_wrong: u64,
    pub invalid_unanswered: u64,
}

/// A failed call whose outcome must be resolved with `GetOperation`.
#[derive(Debug, Clone, Copy)]
pub struct Failure {
    /// Index into this recorder's `ops`.
    pub op: u32,
    pub worker: u32,
    pub number: u64,
}

/// Times of one op on the run clock.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub intended: Instant,
    pub sent: Instant,
    pub received: Instant,
}

/// Where per-second intervals go, and which interval is being filled.
#[derive(Debug)]
pub struct IntervalSink {
    pub tx: UnboundedSender<(u64, Interval)>,
    pub interval_ns: u64,
    current: u64,
    interval: Interval,
}

/// Everything one worker recorded.
#[derive(Debug)]
pub struct Recorder {
    pub worker: u32,
    origin: Instant,
    warmup_end: Instant,
    pub corrected: Histogram<u64>,
    /// The uncorrected latencies (from the actual send), kept apart only
    /// once one differs from its corrected value: in a closed loop every op
    /// is sent when due, the two are equal, and one histogram does for both.
    /// See [`Recorder::uncorrected`].
    uncorrected: Option<Histogram<u64>>,
    /// Corrected latency of the measured calls that got no answer from the
    /// server (see [`answered`]): kept out of `corrected`, which is for answers.
    pub failed: Histogram<u64>,
    /// How late each scheduled send left (µs after its intended time), for
    /// the sends after warmup; empty in a closed loop.
    pub lateness: Histogram<u64>,
    /// Latencies not yet in the histograms (see [`Recorder::finish`]).
    samples: Samples,
    interval: Option<IntervalSink>,
    /// Withdrawals travel over `WithdrawStream` (for the per-RPC breakdown).
    streamed: bool,
    pub per_rpc: PerRpc,
    pub errors: ErrorTally,
    /// Per-stage counts under `--stages`.
    pub stages: Option<StageTally>,
    pub ops: Chunked<Op>,
    pub legs: Vec<TransferLeg>,
    pub reads: Vec<Read>,
    pub duplicates: Vec<Duplicate>,
    pub invalid: Vec<InvalidCall>,
    pub failures: Vec<Failure>,
    pub counts: Counts,
    live: Arc<Live>,
}

impl IntervalSink {
    /// A sink sending one histogram per `interval_ns` of the run clock.
    pub fn new(tx: UnboundedSender<(u64, Interval)>, interval_ns: u64) -> Self {
        IntervalSink {
            tx,
            interval_ns: interval_ns.max(1),
            current: 0,
            interval: Interval::default(),
        }
    }

    /// Counts an op completed at `at_ns`, with its latency if measured.
    fn record(&mut self, at_ns: u64, latency_us: Option<u64>, error: bool) {
        let index = at_ns / self.interval_ns;
        if index != self.current {
            self.flush();
            self.current = index;
        }
        self.interval.ops += 1;
        self.interval.errors += u64::from(error);
        if let Some(us) = latency_us {
            record_us(&mut self.interval.latency, us);
        }
    }

    fn flush(&mut self) {
        if !self.interval.is_empty() {
            let full = std::mem::take(&mut self.interval);
            // The collector outlives the workers; a closed channel only loses the timeline.
            let _ = self.tx.send((self.current, full));
        }
    }
}

impl Recorder {
    /// A recorder on the run clock `origin`; statistics start at `warmup_end`.
    pub fn new(
        worker: u32,
        origin: Instant,
        warmup_end: Instant,
        interval: Option<IntervalSink>,
        live: Arc<Live>,
    ) -> Self {
        Recorder {
            worker,
            origin,
            warmup_end,
            corrected: new_histogram(),
            uncorrected: None,
            failed: new_histogram(),
            lateness: new_histogram(),
            samples: Samples::default(),
            interval,
            streamed: false,
            per_rpc: PerRpc::default(),
            errors: ErrorTally::default(),
            stages: None,
            ops: Chunked::default(),
            legs: Vec::new(),
            reads: Vec::new(),
            duplicates: Vec::new(),
            invalid: Vec::new(),
            failures: Vec::new(),
            counts: Counts::default(),
            live,
        }
    }

    /// Says that withdrawals travel over `WithdrawStream` (stream mode).
    pub fn streamed(mut self, streamed: bool) -> Self {
        self.streamed = streamed;
        self
    }

    /// Nanoseconds since the run's origin.
    pub fn clock_ns(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// Records one finished call; `id_ok` says whether the answer carried
    /// the request id that was sent. Returns the op's index in `ops`.
    pub fn record(
        &mut self,
        planned: &Planned,
        timing: Timing,
        reply: Result<pb::OperationResult, tonic::Status>,
        id_ok: bool,
    ) -> u32 {
        let outcome = Answer {
            error: reply.is_err(),
            answered: answered(&reply),
        };
        self.measure(timing, Rpc::of(planned.kind, self.streamed), outcome);
        // Loud, not saturating: a wrapped index would pair legs with the wrong op.
        let index = u32::try_from(self.ops.len()).expect("fewer than 2^32 ops per worker");
        let mut op = Op {
            account: planned.account,
            kind: planned.kind,
            outcome: Outcome::Unknown,
            resolved: false,
            flags: answer_flags(&reply, id_ok) | (u8::from(planned.wait_for_funds) * Op::WAITS),
            amount: planned.amount,
            send_ns: self.clock_ns(timing.sent),
            recv_ns: u64::MAX,
            balance: 0,
            sequence: 0,
        };
        let mut leg = TransferLeg {
            op: index,
            to_account: planned.to_account,
            to_balance: 0,
            to_sequence: 0,
        };
        self.counts.by_status[status_index(&reply)] += 1;
        match reply {
            Ok(r) => self.fill_reply(&mut op, &mut leg, &r, timing.received),
            Err(status) => self.fail(index, planned.number, &status),
        }
        if planned.kind == Kind::Transfer {
            self.legs.push(leg);
        }
        self.ops.push(op);
        self.live.ops.fetch_add(1, Ordering::Relaxed);
        index
    }

    /// Records a balance read made under load. Only answers (and NOT_FOUND)
    /// tell the checker anything; other failures are counted.
    pub fn record_read(
        &mut self,
        account: u32,
        sent: Instant,
        received: Instant,
        reply: Result<pb::Account, tonic::Status>,
    ) {
        self.counts.reads += 1;
        let measured = (sent >= self.warmup_end).then(|| micros(received.saturating_duration_since(sent)));
        self.per_rpc.record(Rpc::GetBalance, measured);
        let (balance, sequence, not_found) = match reply {
            Ok(a) => (a.balance, a.sequence, false),
            Err(s) if s.code() == tonic::Code::NotFound => (0, 0, true),
            Err(_) => {
                self.counts.read_errors += 1;
                return;
            }
        };
        let read = Read {
            account,
            not_found,
            send_ns: self.clock_ns(sent),
            recv_ns: self.clock_ns(received),
            balance,
            sequence,
        };
        self.reads.push(read);
    }

    /// Records the answer to the second send of op `op` (same request id).
    /// If the original's call failed and the copy got a final answer, that
    /// answer becomes the op's.
    pub fn record_copy(
        &mut self,
        op: u32,
        at_once: bool,
        timing: Timing,
        reply: Result<pb::OperationResult, tonic::Status>,
        id_ok: bool,
    ) {
        self.counts.duplicates += 1;
        let flags = answer_flags(&reply, id_ok);
        let mut d = Duplicate {
            op,
            at_once,
            outcome: Outcome::Unknown,
            aborted: false,
            flags,
            send_ns: self.clock_ns(timing.sent),
            recv_ns: self.clock_ns(timing.received),
            balance: 0,
            sequence: 0,
            to_balance: 0,
            to_sequence: 0,
        };
        match &reply {
            Ok(r) => {
                d.outcome = outcome_of(r.outcome);
                (d.balance, d.sequence, d.to_balance, d.to_sequence) =
                    (r.balance, r.sequence, r.to_balance, r.to_sequence);
            }
            Err(s) if s.code() == tonic::Code::Aborted => {
                self.counts.duplicates_aborted += 1;
                d.aborted = true;
            }
            Err(_) => self.counts.duplicate_errors += 1,
        }
        self.adopt_copy(&d);
        self.duplicates.push(d);
    }

    /// Records an invalid call and its answer (counted under the extras only).
    pub fn record_invalid(&mut self, call: InvalidCall) {
        let c = &mut self.counts;
        c.invalid_sent += 1;
        c.invalid_refused_as_expected += u64::from(call.refused_as_expected());
        c.invalid_wrong += u64::from(call.wrong());
        c.invalid_unanswered += u64::from(call.unanswered());
        self.invalid.push(call);
    }

    /// Gives a failed op the final answer its copy got.
    fn adopt_copy(&mut self, d: &Duplicate) {
        let final_answer = d.outcome.took_sequence() || d.outcome == Outcome::NotApplied;
        let Some(op) = self.ops.get_mut(d.op as usize) else {
            return;
        };
        if !final_answer || op.outcome != Outcome::Unknown || op.has(Op::NOT_FOUND) {
            return;
        }
        (op.outcome, op.balance, op.sequence, op.recv_ns) = (d.outcome, d.balance, d.sequence, d.recv_ns);
        op.flags |= Op::FROM_COPY | (d.flags & Op::WRONG_ID);
        if let Ok(i) = self.legs.binary_search_by_key(&d.op, |l| l.op) {
            (self.legs[i].to_balance, self.legs[i].to_sequence) = (d.to_balance, d.to_sequence);
        }
    }

    /// Counts a failed call and remembers it for `GetOperation`.
    fn fail(&mut self, op: u32, number: u64, status: &tonic::Status) {
        // A transport failure's causes are below its message ("transport error").
        match std::error::Error::source(status) {
            None => self.errors.add(i32::from(status.code()), status.message(), 1),
            Some(_) => self.errors.add(
                i32::from(status.code()),
                &crate::transport::status_text(status),
                1,
            ),
        }
        self.counts.errors += 1;
        self.live.errors.fetch_add(1, Ordering::Relaxed);
        self.failures.push(Failure {
            op,
            worker: self.worker,
            number,
        });
    }

    fn fill_reply(&mut self, op: &mut Op, leg: &mut TransferLeg, r: &pb::OperationResult, received: Instant) {
        let outcome = outcome_of(r.outcome);
        match outcome {
            Outcome::Approved => self.counts.approved += 1,
            Outcome::InsufficientFunds => self.counts.insufficient_funds += 1,
            Outcome::NotApplied => self.counts.not_applied += 1,
            Outcome::Unknown | Outcome::Invalid => self.counts.bad_outcomes += 1,
        }
        op.outcome = outcome;
        op.recv_ns = self.clock_ns(received);
        op.balance = r.balance;
        op.sequence = r.sequence;
        leg.to_balance = r.to_balance;
        leg.to_sequence = r.to_sequence;
    }

    /// Counts how late a scheduled send left (`sent` − `intended`), once
    /// the warmup is over.
    pub fn record_lateness(&mut self, intended: Instant, sent: Instant) {
        if sent >= self.warmup_end {
            record_us(
                &mut self.lateness,
                micros(sent.saturating_duration_since(intended)),
            );
        }
    }

    fn measure(&mut self, timing: Timing, rpc: Rpc, answer: Answer) {
        // Throughput counts every op completed in the measured window, which
        // runs from the end of warmup to the last reply; latency only ops sent
        // in it. (Counting ops by send time would leave out the replies to ops
        // sent during warmup while still timing the drain at the end: a
        // queue-deep bias of latency ÷ duration against a saturated server.)
        if timing.received >= self.warmup_end {
            self.counts.measured += 1;
        }
        let measured = (timing.sent >= self.warmup_end)
            .then(|| micros(timing.received.saturating_duration_since(timing.intended)));
        if let (Some(us), false) = (measured, answer.answered) {
            record_us(&mut self.failed, us);
        }
        // Latency (overall, per stage, per second) is for answers only.
        let corrected = measured.filter(|_| answer.answered);
        self.per_rpc.record(rpc, None);
        let (sent_ns, at_ns) = (self.clock_ns(timing.sent), self.clock_ns(timing.received));
        if let Some(stages) = self.stages.as_mut() {
            stages.record(sent_ns, corrected);
        }
        if let Some(sink) = self.interval.as_mut() {
            sink.record(at_ns, corrected, answer.error);
        }
        if let Some(corrected) = corrected {
            let uncorrected = micros(timing.received.saturating_duration_since(timing.sent));
            self.samples.push(rpc, corrected, uncorrected);
        }
    }

    /// The uncorrected latency distribution (from each op's actual send).
    pub fn uncorrected(&self) -> &Histogram<u64> {
        self.uncorrected.as_ref().unwrap_or(&self.corrected)
    }

    /// Puts the samples into the histograms and sends the last partial
    /// interval; call once when the worker is done, before reading them.
    pub fn finish(&mut self) {
        self.samples.drain_into(Histograms {
            corrected: &mut self.corrected,
            uncorrected: &mut self.uncorrected,
            per_rpc: &mut self.per_rpc,
        });
        if let Some(sink) = self.interval.as_mut() {
            sink.flush();
        }
        self.interval = None;
    }
}

/// How a call ended, for the statistics.
#[derive(Debug, Clone, Copy)]
struct Answer {
    /// It ended with an error status (counted as an error).
    error: bool,
    /// The server answered it (see [`answered`]).
    answered: bool,
}

/// Whether a call was answered by the server: a reply, or a status other
/// than the ones that say no answer came — UNAVAILABLE (transport errors,
/// reconnect back-off, a server going away), DEADLINE_EXCEEDED (`--timeout`
/// on the client's clock, or the server giving up on the deadline),
/// CANCELLED (a stream cut before the call's turn) and UNKNOWN (a stream
/// that ended early, an unparsable answer). Their time measures the failure,
/// not the server's service, so it goes to `latency_failed_us`.
pub fn answered(reply: &Result<pb::OperationResult, tonic::Status>) -> bool {
    use tonic::Code;
    match reply {
        Ok(_) => true,
        Err(s) => !matches!(
            s.code(),
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
        ),
    }
}

/// What an answer says besides its outcome: `replayed`, a foreign request
/// id, NOT_FOUND, ABORTED.
fn answer_flags(reply: &Result<pb::OperationResult, tonic::Status>, id_ok: bool) -> u8 {
    match reply {
        Ok(r) => (u8::from(r.replayed) * Op::REPLAYED) | (u8::from(!id_ok) * Op::WRONG_ID),
        Err(s) if s.code() == tonic::Code::NotFound => Op::NOT_FOUND,
        Err(s) if s.code() == tonic::Code::Aborted => Op::ABORTED,
        Err(_) => 0,
    }
}

/// The checker's outcome for a wire outcome; values outside the contract are `Invalid`.
pub fn outcome_of(wire: i32) -> Outcome {
    match pb::Outcome::try_from(wire) {
        Ok(pb::Outcome::Approved) => Outcome::Approved,
        Ok(pb::Outcome::InsufficientFunds) => Outcome::InsufficientFunds,
        Ok(pb::Outcome::NotApplied) => Outcome::NotApplied,
        Ok(pb::Outcome::Unspecified) | Err(_) => Outcome::Invalid,
    }
}

fn status_index(reply: &Result<pb::OperationResult, tonic::Status>) -> usize {
    match reply {
        Ok(_) => 0,
        Err(status) => usize::try_from(i32::from(status.code()))
            .unwrap_or(2)
            .min(STATUS_CODES - 1),
    }
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Moves the workers' records into one history (the recorders keep their
/// histograms and counts; their op buffers are emptied, not copied).
pub fn history(recorders: &mut [Recorder], accounts: Vec<AccountState>) -> History {
    let total: usize = recorders.iter().map(|r| r.ops.len()).sum();
    let mut history = History {
        accounts,
        ops: Vec::with_capacity(total),
        transfers: Vec::new(),
        reads: Vec::new(),
        duplicates: Vec::new(),
        invalid: Vec::new(),
        processes: Default::default(),
    };
    for rec in recorders {
        // The checker takes fewer than 2^32 records; a run this large is refused
        // by the checker as malformed rather than wrapped here.
        let offset = u32::try_from(history.ops.len()).expect("fewer than 2^32 ops recorded");
        rec.ops.move_into(&mut history.ops);
        history.transfers.extend(rec.legs.iter().map(|leg| {
            let mut leg = *leg;
            leg.op = leg.op.saturating_add(offset);
            leg
        }));
        history.reads.append(&mut rec.reads);
        history.duplicates.extend(rec.duplicates.drain(..).map(|mut d| {
            d.op = d.op.saturating_add(offset);
            d
        }));
        history.invalid.extend(rec.invalid.drain(..).map(|mut c| {
            if c.op != InvalidCall::NO_INDEX {
                c.op = c.op.saturating_add(offset);
            }
            c
        }));
    }
    history
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn op(rec: &mut Recorder, start: Instant, intended_us: u64, sent_us: u64, received_us: u64) {
        // ABORTED: an answer from the server (it says something about the op).
        op_ending(
            rec,
            start,
            (intended_us, sent_us, received_us),
            tonic::Code::Aborted,
        );
    }

    fn op_ending(
        rec: &mut Recorder,
        start: Instant,
        (intended_us, sent_us, received_us): (u64, u64, u64),
        code: tonic::Code,
    ) {
        let at = |us| start + Duration::from_micros(us);
        let planned = Planned {
            kind: Kind::Withdraw,
            account: 0,
            to_account: 0,
            amount: 1,
            wait_for_funds: false,
            number: 0,
        };
        let timing = Timing {
            intended: at(intended_us),
            sent: at(sent_us),
            received: at(received_us),
        };
        rec.record(&planned, timing, Err(tonic::Status::new(code, "x")), true);
    }

    /// Calls the server never answered (transport errors, `--timeout`, cut
    /// streams) are timed apart; the latency is for answers.
    #[test]
    fn failed_calls_have_their_own_histogram() {
        let start = Instant::now();
        let mut rec = Recorder::new(0, start, start, None, Arc::new(Live::default()));
        op_ending(&mut rec, start, (0, 0, 100), tonic::Code::Aborted);
        op_ending(&mut rec, start, (0, 0, 1_000_000), tonic::Code::DeadlineExceeded);
        op_ending(&mut rec, start, (0, 10, 7), tonic::Code::Unavailable);
        op_ending(&mut rec, start, (0, 10, 9), tonic::Code::Cancelled);
        rec.finish();
        assert_eq!(rec.corrected.len(), 1);
        assert_eq!(rec.corrected.max(), 100);
        assert_eq!(rec.failed.len(), 3);
        assert_eq!(rec.failed.min(), 7);
        assert_eq!(rec.failed.max(), rec.failed.highest_equivalent(1_000_000));
        assert_eq!(rec.counts.errors, 4, "all four are errors still");
        assert_eq!(rec.per_rpc.latency[Rpc::Withdraw as usize].len(), 1);
    }

    /// Lateness is counted from the end of warmup, in µs after the intended time.
    #[test]
    fn lateness_counts_sends_after_warmup() {
        let start = Instant::now();
        let at = |us| start + Duration::from_micros(us);
        let mut rec = Recorder::new(0, start, at(1_000), None, Arc::new(Live::default()));
        rec.record_lateness(at(0), at(900));
        rec.record_lateness(at(1_000), at(1_040));
        rec.record_lateness(at(2_000), at(2_000));
        assert_eq!(
            (rec.lateness.len(), rec.lateness.max(), rec.lateness.min()),
            (2, 40, 0)
        );
    }

    /// The histograms hold every measured op once the worker finishes.
    #[test]
    fn finish_fills_the_histograms_with_the_measured_ops() {
        let start = Instant::now();
        let warmup_end = start + Duration::from_micros(15);
        let mut rec = Recorder::new(0, start, warmup_end, None, Arc::new(Live::default()));
        // The first is sent during warmup: counted, not measured.
        let ops = [(0, 0, 100), (20, 20, 90), (30, 500, 900), (40, 40, 50)];
        for &(intended, sent, received) in &ops {
            op(&mut rec, start, intended, sent, received);
        }
        assert!(rec.corrected.is_empty(), "samples wait for finish");
        rec.finish();
        let (mut corrected, mut uncorrected) = (new_histogram(), new_histogram());
        for &(intended, sent, received) in &ops[1..] {
            record_us(&mut corrected, received - intended);
            record_us(&mut uncorrected, received - sent);
        }
        assert_eq!(rec.corrected, corrected);
        assert_eq!(*rec.uncorrected(), uncorrected);
        assert_eq!(rec.per_rpc.calls[Rpc::Withdraw as usize], 4);
        assert_eq!(rec.per_rpc.latency[Rpc::Withdraw as usize].len(), 3);
    }
}
