//! One worker: a single task that keeps up to `--pipeline` ops in flight on
//! its connection, over a `WithdrawStream` (stream mode) and unary calls, and
//! records each as it completes. One task, no shared state: no lock per op.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bank::v1 as pb;
use bank::v1::bank_client::BankClient;
use bank_checker::Kind;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::Status;

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
    pub client: BankClient<Channel>,
    pub mode: Mode,
    pub pipeline: usize,
    pub timeout: Duration,
    pub budget: Budget,
    pub names: Arc<Names>,
}

type UnaryFuture =
    Pin<Box<dyn Future<Output = (InFlight, Instant, Result<pb::OperationResult, Status>)> + Send>>;

/// An open `WithdrawStream` and its ops in flight, oldest first.
struct OpenStream {
    tx: mpsc::Sender<pb::WithdrawRequest>,
    rx: tonic::Streaming<pb::OperationResult>,
    inflight: VecDeque<InFlight>,
}

/// The worker's mutable state.
struct Worker {
    spec: WorkerSpec,
    generator: Generator,
    schedule: Schedule,
    rec: Recorder,
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
pub async fn run(spec: WorkerSpec, generator: Generator, schedule: Schedule, rec: Recorder) -> Recorder {
    let mut w = Worker {
        spec,
        generator,
        schedule,
        rec,
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
        if !more && inflight == 0 {
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
                self.rec.record(&f.planned, timing(&f, received), reply);
            }
            reply = next_reply(&mut self.stream), if stream_front.is_some() => self.on_stream_reply(reply),
            () = sleep_until(stream_deadline), if stream_front.is_some() => {
                self.fail_stream(Status::deadline_exceeded("no stream reply within --timeout"));
            }
            () = sleep_until(wake), if can_send => self.send_next().await,
        }
        true
    }

    async fn send_next(&mut self) {
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
        if self.spec.mode == Mode::Stream && planned.kind == Kind::Withdraw {
            self.send_on_stream(f).await;
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

    async fn send_on_stream(&mut self, mut f: InFlight) {
        if self.stream.is_none() {
            match open_stream(&mut self.spec.client, self.spec.pipeline).await {
                Ok(s) => self.stream = Some(s),
                Err(status) => {
                    return self
                        .rec
                        .record(&f.planned, timing(&f, Instant::now()), Err(status))
                }
            }
        }
        let request = self.spec.names.withdraw(self.spec.index, &f.planned);
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        // Opening the stream is part of the op's latency only through `intended`.
        f.sent = Instant::now();
        if stream.tx.send(request).await.is_err() {
            self.rec.record(
                &f.planned,
                timing(&f, Instant::now()),
                Err(Status::unavailable("stream closed")),
            );
            self.fail_stream(Status::unavailable("stream closed"));
            return;
        }
        stream.inflight.push_back(f);
    }

    fn on_stream_reply(&mut self, reply: Result<Option<pb::OperationResult>, Status>) {
        let received = Instant::now();
        match reply {
            Ok(Some(result)) => {
                let front = self.stream.as_mut().and_then(|s| s.inflight.pop_front());
                if let Some(f) = front {
                    self.rec.record(&f.planned, timing(&f, received), Ok(result));
                }
            }
            Ok(None) => self.fail_stream(Status::unknown("the server ended the stream early")),
            Err(status) => self.fail_stream(status),
        }
    }

    /// Drops the stream (the server abandons what is queued) and records every
    /// op still in flight on it as failed with `status`.
    fn fail_stream(&mut self, status: Status) {
        let Some(stream) = self.stream.take() else { return };
        let received = Instant::now();
        for f in stream.inflight {
            self.rec
                .record(&f.planned, timing(&f, received), Err(status.clone()));
        }
    }
}

async fn open_stream(client: &mut BankClient<Channel>, pipeline: usize) -> Result<OpenStream, Status> {
    let (tx, rx) = mpsc::channel(pipeline.max(1));
    let response = client.withdraw_stream(ReceiverStream::new(rx)).await?;
    Ok(OpenStream {
        tx,
        rx: response.into_inner(),
        inflight: VecDeque::with_capacity(pipeline),
    })
}

async fn next_reply(stream: &mut Option<OpenStream>) -> Result<Option<pb::OperationResult>, Status> {
    match stream {
        Some(s) => s.rx.message().await,
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
