//! One worker: a single task that keeps up to `--pipeline` ops in flight on
//! its connection, over a `WithdrawStream` (stream mode) and unary calls, and
//! records each as it completes. One task, no shared state: no lock per op.
//! Money ops take the fast path ([`crate::h2fast`]) when the worker has a
//! fast connection, tonic otherwise.
//!
//! Besides money ops it makes the extra calls of [`super::extras`] (balance reads
//! and duplicate sends, always over tonic; invalid calls the way money ops
//! go), which it also waits for before it ends.
//!
//! Nothing here waits on the server without a bound: a unary call is cut at
//! `--timeout`, and so is the oldest op on a stream (which then fails with
//! everything behind it). A stream's requests go out before its response
//! headers arrive, because a server may send its headers only with its
//! first answer (grpcio's sync server and grpc-go do).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::h2fast::Conn;
use crate::transport::Bank;
use bank::v1 as pb;
use bank_checker::Kind;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tonic::Status;

use super::extras::Extras;
use super::pacer::Pacer;
use super::requests::{call_fast, call_unary, InFlight, Names, Scratch};
use super::schedule::Schedule;
use super::stream::{next_event, OpenStream, StreamEvent};
use crate::cli::Mode;
use crate::recorder::{Recorder, Timing};
use crate::workload::Generator;

/// How much work a worker does.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// Send exactly this many ops.
    Ops(u64),
    /// Send until this instant.
    Until(Instant),
}

/// Everything a worker needs besides its generator, schedule and recorder.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    pub index: u32,
    /// Which of the run's connections the worker uses.
    pub connection: usize,
    pub client: Bank,
    /// The fast path's connection, if this run uses it.
    pub fast: Option<Conn>,
    pub mode: Mode,
    pub pipeline: usize,
    pub timeout: Duration,
    pub budget: Budget,
    pub names: Arc<Names>,
}

type UnaryFuture =
    Pin<Box<dyn Future<Output = (InFlight, Instant, Result<pb::OperationResult, Status>)> + Send>>;

/// The worker's mutable state.
struct Worker {
    spec: WorkerSpec,
    generator: Generator,
    schedule: Schedule,
    pacer: Pacer,
    rec: Recorder,
    extras: Extras,
    unary: FuturesUnordered<UnaryFuture>,
    stream: Option<OpenStream>,
    /// Cuts the stream once its oldest op has waited `--timeout` (see [`StreamTimer`]).
    stream_timer: StreamTimer,
    scratch: Scratch,
    sent: u64,
}

/// The stream's `--timeout` timer, armed lazily: at the deadline of the
/// oldest op in flight when it is armed, and left alone while ops are
/// answered; when it fires, the stream is cut only if its oldest op is
/// then overdue, else it is re-armed at that op's deadline. Deadlines only
/// grow (ops are answered oldest first, and sent later ones later), so it
/// never fires late. Arming a timer on every step cost a timer-wheel entry
/// added and removed per op (issue 22, bench P5).
struct StreamTimer {
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl StreamTimer {
    /// Fires at the latest at `deadline` (the oldest op's).
    async fn fired(&mut self, deadline: Instant) {
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.into())));
        sleep.as_mut().await;
    }

    /// Re-arms it at `deadline`.
    fn rearm(&mut self, deadline: Instant) {
        if let Some(sleep) = self.sleep.as_mut() {
            sleep.as_mut().reset(deadline.into());
        }
    }
}

impl Budget {
    fn allows(self, sent: u64, now: Instant) -> bool {
        match self {
            Budget::Ops(n) => sent < n,
            Budget::Until(end) => now < end,
        }
    }

    fn end(self) -> Option<Instant> {
        match self {
            Budget::Ops(_) => None,
            Budget::Until(end) => Some(end),
        }
    }
}

/// Runs one worker to the end of its budget and returns what it recorded.
pub async fn run(
    spec: WorkerSpec,
    generator: Generator,
    schedule: Schedule,
    rec: Recorder,
    mut extras: Extras,
) -> Recorder {
    extras.use_fast_path(spec.fast.clone());
    let mut w = Worker {
        spec,
        generator,
        schedule,
        // Made here, inside the runtime the worker runs on (its timer is registered there).
        pacer: Pacer::new(),
        rec,
        extras,
        unary: FuturesUnordered::new(),
        stream: None,
        stream_timer: StreamTimer { sleep: None },
        scratch: Scratch::default(),
        sent: 0,
    };
    while w.step().await {}
    w.fail_stream(Status::cancelled("worker finished"));
    w.rec.finish();
    w.rec
}

impl Worker {
    fn inflight(&self) -> usize {
        self.unary.len() + self.stream.as_ref().map_or(0, |s| s.inflight.len())
    }

    /// Waits for the next event and handles it; false when the worker is done.
    async fn step(&mut self) -> bool {
        let now = Instant::now();
        let more = self.spec.budget.allows(self.sent, now);
        let inflight = self.inflight();
        if !more && inflight == 0 && !self.extras.busy() {
            return false;
        }
        let can_send = more && inflight < self.spec.pipeline;
        // Closed loop sends now; open loop sleeps until the op is due (or the budget ends).
        let wake = self
            .schedule
            .due()
            .map(|due| earliest(due, self.spec.budget.end()));
        let stream_front = self
            .stream
            .as_ref()
            .and_then(|s| s.inflight.front())
            .map(|f| f.sent);
        let stream_deadline = stream_front.map(|sent| sent + self.spec.timeout);
        tokio::select! {
            biased;
            Some((f, received, reply)) = self.unary.next(), if !self.unary.is_empty() => {
                self.record(&f, received, reply);
            }
            Some(done) = self.extras.calls.next(), if !self.extras.calls.is_empty() => {
                self.extras.on_done(done, &self.spec.names, self.spec.index, &mut self.rec);
            }
            event = next_event(&mut self.stream), if stream_front.is_some() => self.on_stream_event(event),
            () = self.stream_timer.fired(stream_deadline.unwrap_or(now)), if stream_front.is_some() => {
                self.on_stream_timer();
            }
            () = pace(&mut self.pacer, wake), if can_send => self.send_next(),
        }
        true
    }

    fn send_next(&mut self) {
        let now = Instant::now();
        if !self.spec.budget.allows(self.sent, now) {
            return;
        }
        let paced = self.schedule.due().is_some();
        let intended = self.schedule.take(now);
        if paced {
            self.rec.record_lateness(intended, now);
        }
        let planned = self.generator.next_op();
        self.sent += 1;
        let f = InFlight {
            planned,
            intended,
            sent: now,
        };
        self.extras
            .on_send(&self.spec.client, &self.spec.names, self.spec.index, &f);
        if self.spec.mode == Mode::Stream && planned.kind == Kind::Withdraw {
            self.send_on_stream(f);
        } else if let Some(conn) = &self.spec.fast {
            let body = self.scratch.body(&self.spec.names, self.spec.index, &planned);
            let call = call_fast(conn.clone(), f, body, self.spec.timeout);
            self.unary.push(Box::pin(call));
        } else {
            let call = call_unary(
                self.spec.client.clone(),
                Arc::clone(&self.spec.names),
                self.spec.index,
                f,
                self.spec.timeout,
            );
            self.unary.push(Box::pin(call));
        }
    }

    /// Puts `f` on the worker's stream, opening one if needed.
    fn send_on_stream(&mut self, f: InFlight) {
        let spec = &self.spec;
        let opened = match self.stream.take() {
            Some(stream) => Ok(stream),
            None => match &spec.fast {
                Some(conn) => OpenStream::fast(conn, spec.pipeline),
                None => Ok(OpenStream::tonic(&spec.client, spec.pipeline)),
            },
        };
        let sent = opened.and_then(|stream| {
            let stream = self.stream.insert(stream);
            let request = || spec.names.withdraw(spec.index, &f.planned);
            let body = || self.scratch.body(&spec.names, spec.index, &f.planned);
            stream.send(request, body).map(|()| stream.inflight.push_back(f))
        });
        // A stream that cannot take the request is dropped, with what it had in flight.
        if let Err(status) = sent {
            self.record(&f, Instant::now(), Err(status.clone()));
            self.fail_stream(status);
        }
    }

    /// The stream's timer fired: the stream is cut if its oldest op is
    /// overdue, else the timer waits for that op's deadline.
    fn on_stream_timer(&mut self) {
        let front = self.stream.as_ref().and_then(|s| s.inflight.front());
        let Some(deadline) = front.map(|f| f.sent + self.spec.timeout) else {
            return;
        };
        if Instant::now() >= deadline {
            self.fail_stream(Status::deadline_exceeded("no stream reply within --timeout"));
        } else {
            self.stream_timer.rearm(deadline);
        }
    }

    fn on_stream_event(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::Opened(answers) => {
                if let Some(stream) = self.stream.as_mut() {
                    stream.opened(answers);
                }
            }
            StreamEvent::Reply(Ok(Some(result))) => self.on_stream_answer(result),
            StreamEvent::Reply(Ok(None)) => {
                self.fail_stream(Status::unknown("the server ended the stream early"));
            }
            StreamEvent::Reply(Err(status)) => self.fail_stream(status),
        }
    }

    /// Pairs an answer with the oldest op in flight: the contract answers in
    /// request order. (An answer out of order carries another op's request
    /// id, which the history keeps: the checker reports it.)
    fn on_stream_answer(&mut self, result: pb::OperationResult) {
        let received = Instant::now();
        match self.stream.as_mut().and_then(|s| s.inflight.pop_front()) {
            Some(f) => self.record(&f, received, Ok(result)),
            None => self.fail_stream(Status::internal("the server answered a request never sent")),
        }
    }

    /// Drops the stream (the server abandons what is queued) and records every
    /// op still in flight on it as failed: the oldest with `status` (the
    /// contract ends a stream with the status of its first unanswered request,
    /// after every earlier one was answered), the ones sent after it as
    /// CANCELLED, never answered. Their outcome is unknown either way, but a
    /// status that says something about a request (ABORTED: it waits for
    /// funds; NOT_FOUND: its account is gone) must not be pinned on requests
    /// the server never answered.
    fn fail_stream(&mut self, status: Status) {
        let Some(stream) = self.stream.take() else { return };
        let received = Instant::now();
        let mut inflight = stream.inflight.into_iter();
        if let Some(first) = inflight.next() {
            self.record(&first, received, Err(status.clone()));
        }
        let cut = Status::cancelled(format!(
            "the stream ended ({:?}: {}) before this request was answered",
            status.code(),
            status.message()
        ));
        for f in inflight {
            self.record(&f, received, Err(cut.clone()));
        }
    }

    /// Records a finished money op (checking the request id its answer
    /// carries), then lets the extra calls follow it up.
    fn record(&mut self, f: &InFlight, received: Instant, reply: Result<pb::OperationResult, Status>) {
        let (names, worker) = (&self.spec.names, self.spec.index);
        let id_ok = reply
            .as_ref()
            .map_or(true, |r| names.is_request_id(worker, &f.planned, &r.request_id));
        let op = self.rec.record(&f.planned, timing(f, received), reply, id_ok);
        self.extras
            .on_recorded(&self.spec.client, names, worker, f.planned, op, &mut self.rec);
    }
}

/// Waits for the next scheduled send (closed loop: none, go now).
async fn pace(pacer: &mut Pacer, at: Option<Instant>) {
    if let Some(at) = at {
        pacer.until(at).await;
    }
}

fn earliest(due: Instant, end: Option<Instant>) -> Instant {
    end.map_or(due, |end| due.min(end))
}

fn timing(f: &InFlight, received: Instant) -> Timing {
    Timing {
        intended: f.intended,
        sent: f.sent,
        received,
    }
}
