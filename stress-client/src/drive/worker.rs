//! One worker: a single task that keeps up to `--pipeline` ops in flight on
//! its connection, over a `WithdrawStream` (stream mode) and unary calls, and
//! records each as it completes. One task, no shared state: no lock per op.
//!
//! Besides money ops it makes the extra calls of [`super::extras`] (balance reads
//! and duplicate sends), which it also waits for before it ends.
//!
//! Nothing here waits on the server without a bound: a unary call is cut at
//! `--timeout`, and so is the oldest op on a stream (which then fails with
//! everything behind it). A stream's requests go out before its response
//! headers arrive, because a server may send its headers only with its
//! first answer (grpcio's sync server and grpc-go do).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::transport::Bank;
use bank::v1 as pb;
use bank_checker::Kind;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Response, Status};

use super::extras::Extras;
use super::requests::{call_unary, InFlight, Names};
use super::schedule::Schedule;
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
    pub client: Bank,
    pub mode: Mode,
    pub pipeline: usize,
    pub timeout: Duration,
    pub budget: Budget,
    pub names: Arc<Names>,
}

type UnaryFuture =
    Pin<Box<dyn Future<Output = (InFlight, Instant, Result<pb::OperationResult, Status>)> + Send>>;

type OpenFuture = Pin<Box<dyn Future<Output = Result<Response<Answers>, Status>> + Send>>;
type Answers = tonic::Streaming<pb::OperationResult>;

/// The answer side of a `WithdrawStream`: waiting for the response headers
/// (while requests already flow), or open.
enum AnswerSide {
    Opening(OpenFuture),
    Open(Box<Answers>),
}

/// What a stream's answer side produced.
enum StreamEvent {
    /// The response headers arrived.
    Opened(Box<Answers>),
    /// The next answer, the end of the stream, or its error status.
    Reply(Result<Option<pb::OperationResult>, Status>),
}

/// A `WithdrawStream` and its ops in flight, oldest first.
struct OpenStream {
    tx: mpsc::Sender<pb::WithdrawRequest>,
    answers: AnswerSide,
    inflight: VecDeque<InFlight>,
}

/// The worker's mutable state.
struct Worker {
    spec: WorkerSpec,
    generator: Generator,
    schedule: Schedule,
    rec: Recorder,
    extras: Extras,
    unary: FuturesUnordered<UnaryFuture>,
    stream: Option<OpenStream>,
    sent: u64,
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
    extras: Extras,
) -> Recorder {
    let mut w = Worker {
        spec,
        generator,
        schedule,
        rec,
        extras,
        unary: FuturesUnordered::new(),
        stream: None,
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
        let more = self.spec.budget.allows(self.sent, Instant::now());
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
            () = sleep_until(stream_deadline), if stream_front.is_some() => {
                self.fail_stream(Status::deadline_exceeded("no stream reply within --timeout"));
            }
            () = sleep_until(wake), if can_send => self.send_next(),
        }
        true
    }

    fn send_next(&mut self) {
        let now = Instant::now();
        if !self.spec.budget.allows(self.sent, now) {
            return;
        }
        let intended = self.schedule.take(now);
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

    /// Puts `f` on the worker's stream, opening one if needed. The request is
    /// queued at once: the channel holds `--pipeline` requests and at most
    /// that many are in flight, so there is always room.
    fn send_on_stream(&mut self, f: InFlight) {
        let request = self.spec.names.withdraw(self.spec.index, &f.planned);
        let spec = &self.spec;
        let stream = self
            .stream
            .get_or_insert_with(|| open_stream(&spec.client, spec.pipeline));
        if stream.tx.try_send(request).is_ok() {
            stream.inflight.push_back(f);
            return;
        }
        let closed = Status::unavailable("the stream's request side is closed");
        self.record(&f, Instant::now(), Err(closed.clone()));
        self.fail_stream(closed);
    }

    fn on_stream_event(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::Opened(answers) => {
                if let Some(stream) = self.stream.as_mut() {
                    stream.answers = AnswerSide::Open(answers);
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
    /// op still in flight on it as failed with `status`.
    fn fail_stream(&mut self, status: Status) {
        let Some(stream) = self.stream.take() else { return };
        let received = Instant::now();
        for f in stream.inflight {
            self.record(&f, received, Err(status.clone()));
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

/// A new `WithdrawStream` on `client`'s connection. The call is only
/// started here; its response headers are awaited by [`next_event`] while
/// requests are already queued, so a server that holds its headers until it
/// has a first answer is not waited on forever.
fn open_stream(client: &Bank, pipeline: usize) -> OpenStream {
    let (tx, rx) = mpsc::channel(pipeline.max(1));
    let mut client = client.clone();
    let opening = async move { client.withdraw_stream(ReceiverStream::new(rx)).await };
    OpenStream {
        tx,
        answers: AnswerSide::Opening(Box::pin(opening)),
        inflight: VecDeque::with_capacity(pipeline),
    }
}

/// The next event of the worker's stream; never resolves without one.
/// Cancel-safe: the opening call stays in the stream when this is dropped.
async fn next_event(stream: &mut Option<OpenStream>) -> StreamEvent {
    match stream.as_mut().map(|s| &mut s.answers) {
        Some(AnswerSide::Opening(opening)) => match opening.await {
            Ok(response) => StreamEvent::Opened(Box::new(response.into_inner())),
            Err(status) => StreamEvent::Reply(Err(status)),
        },
        Some(AnswerSide::Open(answers)) => StreamEvent::Reply(answers.message().await),
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
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
