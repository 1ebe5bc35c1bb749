//! A worker's `WithdrawStream`: over tonic (its requests fed through a
//! channel) or over the fast path ([`crate::h2fast::Bidi`]), with the ops in
//! flight on it, oldest first. Either way its answer side is awaited while
//! requests already flow, because a server may send its headers only with
//! its first answer (grpcio's sync server and grpc-go do).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;

use bank::v1 as pb;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Response, Status};

use super::requests::InFlight;
use crate::h2fast::{Bidi, Conn};
use crate::transport::Bank;

type OpenFuture = Pin<Box<dyn Future<Output = Result<Response<Answers>, Status>> + Send>>;
/// The answers of a tonic `WithdrawStream`.
pub type Answers = tonic::Streaming<pb::OperationResult>;

/// The answer side of a tonic `WithdrawStream`: waiting for the response
/// headers (while requests already flow), or open.
enum AnswerSide {
    Opening(OpenFuture),
    Open(Box<Answers>),
}

/// How the stream travels.
enum Side {
    Tonic {
        tx: mpsc::Sender<pb::WithdrawRequest>,
        answers: AnswerSide,
    },
    Fast(Box<Bidi>),
}

/// What a stream's answer side produced.
pub enum StreamEvent {
    /// The response headers arrived (tonic only).
    Opened(Box<Answers>),
    /// The next answer, the end of the stream, or its error status.
    Reply(Result<Option<pb::OperationResult>, Status>),
}

/// A `WithdrawStream` and its ops in flight, oldest first.
pub struct OpenStream {
    side: Side,
    pub inflight: VecDeque<InFlight>,
}

impl OpenStream {
    /// A new tonic `WithdrawStream` on `client`'s connection. The call is
    /// only started here; its response headers are awaited by [`next_event`].
    pub fn tonic(client: &Bank, pipeline: usize) -> OpenStream {
        let (tx, rx) = mpsc::channel(pipeline.max(1));
        let mut client = client.clone();
        let opening = async move { client.withdraw_stream(ReceiverStream::new(rx)).await };
        OpenStream {
            side: Side::Tonic {
                tx,
                answers: AnswerSide::Opening(Box::pin(opening)),
            },
            inflight: VecDeque::with_capacity(pipeline),
        }
    }

    /// A new fast-path `WithdrawStream` on `conn`.
    pub fn fast(conn: &Conn, pipeline: usize) -> Result<OpenStream, Status> {
        Ok(OpenStream {
            side: Side::Fast(Box::new(Bidi::open(conn)?)),
            inflight: VecDeque::with_capacity(pipeline),
        })
    }

    /// Queues a request: `request` on tonic, `body` (the same, framed) on the
    /// fast path. The tonic channel holds `--pipeline` requests and at most
    /// that many are in flight, so there is always room.
    pub fn send(
        &mut self,
        request: impl FnOnce() -> pb::WithdrawRequest,
        body: impl FnOnce() -> Result<Bytes, Status>,
    ) -> Result<(), Status> {
        match &mut self.side {
            Side::Tonic { tx, .. } => tx
                .try_send(request())
                .map_err(|_| Status::unavailable("the stream's request side is closed")),
            Side::Fast(bidi) => {
                bidi.send(body()?);
                Ok(())
            }
        }
    }

    /// Takes the response headers in (tonic).
    pub fn opened(&mut self, answers: Box<Answers>) {
        if let Side::Tonic { answers: side, .. } = &mut self.side {
            *side = AnswerSide::Open(answers);
        }
    }
}

/// The next event of the worker's stream; never resolves without one.
/// Cancel-safe: the opening call stays in the stream when this is dropped.
pub async fn next_event(stream: &mut Option<OpenStream>) -> StreamEvent {
    let Some(stream) = stream.as_mut() else {
        return std::future::pending().await;
    };
    match &mut stream.side {
        Side::Tonic {
            answers: AnswerSide::Opening(opening),
            ..
        } => match opening.await {
            Ok(response) => StreamEvent::Opened(Box::new(response.into_inner())),
            Err(status) => StreamEvent::Reply(Err(status)),
        },
        Side::Tonic {
            answers: AnswerSide::Open(answers),
            ..
        } => StreamEvent::Reply(answers.message().await),
        Side::Fast(bidi) => StreamEvent::Reply(bidi.next().await),
    }
}
