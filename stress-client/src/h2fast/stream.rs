//! A `WithdrawStream` on the fast path: one HTTP/2 stream whose request
//! side carries framed `WithdrawRequest`s as they are sent and whose answer
//! side is read as a poll-based state machine over what the connection
//! buffered for it (messages cut out as they complete, then the final
//! status), so waiting for the next answer can be dropped and resumed
//! without losing anything. The request side works before the response
//! headers arrive: a server may hold its headers until its first answer. On
//! a connection found unusable the stream waits for a new one (requests
//! queue meanwhile). Dropping the stream resets it.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bank::v1 as pb;
use bytes::Bytes;
use tonic::Status;

use super::conn::{Conn, Current, FastCall};
use super::framing::{decode, next_message};
use super::wire::status::{from_fields, from_reset, missing};
use super::wire::{take_answer, Answer, End, Refused, Slot, StreamRef, Waiting};

type Reconnect = Pin<Box<dyn Future<Output = Result<Current, Status>> + Send>>;

/// Where the stream is.
enum State {
    /// Waiting for a new connection (the old one was unusable).
    Connecting(Reconnect),
    /// Waiting for the server's stream limit to let it open.
    Opening(Waiting),
    Open(StreamRef),
    /// The final status has been handed out.
    Done,
}

/// What the answer side has next.
enum Event {
    Message(Bytes),
    Failed(Status),
    End(Answer),
}

/// An open `WithdrawStream`.
pub struct Bidi {
    conn: Conn,
    state: State,
    /// Requests sent before the stream was open.
    queued: Vec<Bytes>,
}

impl Bidi {
    /// Starts a `WithdrawStream` on `conn` (only the head is sent here).
    pub fn open(conn: &Conn) -> Result<Bidi, Status> {
        let current = conn.current()?;
        let state = match current.link.try_open(FastCall::WithdrawStream, None, false) {
            Ok(id) => State::Open(StreamRef {
                link: Arc::clone(&current.link),
                id,
            }),
            Err(Refused::Full) => State::Opening(Waiting::new(current.link)),
            Err(Refused::Unusable(_)) => State::Connecting(Box::pin(conn.reconnect(current.generation))),
        };
        Ok(Bidi {
            conn: conn.clone(),
            state,
            queued: Vec::new(),
        })
    }

    /// Sends one framed request (queued while the stream waits to open). A
    /// request side that is already closed — the server ended or reset the
    /// stream — takes nothing more, and the answer side tells why (its
    /// status, or the reset), as on tonic's path: so a failed send is not
    /// itself the op's failure.
    pub fn send(&mut self, body: Bytes) {
        match &self.state {
            State::Open(stream) => stream.link.send(stream.id, body, false),
            _ => self.queued.push(body),
        }
    }

    /// The next answer; `Ok(None)` when the server ended the stream with OK.
    /// Cancel-safe: all state lives in `self`.
    pub async fn next(&mut self) -> Result<Option<pb::OperationResult>, Status> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Polls for the next answer (see [`Bidi::next`]).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<pb::OperationResult>, Status>> {
        loop {
            match &mut self.state {
                State::Connecting(reconnect) => match ready!(reconnect.as_mut().poll(cx)) {
                    Ok(current) => self.state = State::Opening(Waiting::new(current.link)),
                    Err(status) => return Poll::Ready(self.end(Err(status))),
                },
                State::Opening(waiting) => {
                    match ready!(waiting.poll_open(cx, FastCall::WithdrawStream, None, false)) {
                        Ok(stream) => self.opened(stream),
                        Err(status) => return Poll::Ready(self.end(Err(status))),
                    }
                }
                State::Open(stream) => match ready!(stream.poll(cx, next_event)) {
                    Event::Message(m) => return Poll::Ready(decode(m).map(Some)),
                    Event::Failed(status) => return Poll::Ready(self.end(Err(status))),
                    Event::End(answer) => return Poll::Ready(self.end(final_status(answer).map(|()| None))),
                },
                State::Done => return Poll::Ready(Ok(None)),
            }
        }
    }

    /// The stream opened: what was queued goes out.
    fn opened(&mut self, stream: StreamRef) {
        for body in self.queued.drain(..) {
            stream.link.send(stream.id, body, false);
        }
        self.state = State::Open(stream);
    }

    fn end<T>(&mut self, result: Result<T, Status>) -> Result<T, Status> {
        self.state = State::Done;
        result
    }
}

impl std::fmt::Debug for Bidi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bidi").field("conn", &self.conn).finish()
    }
}

/// The next message the stream holds, else its end once it ended.
fn next_event(slot: &mut Slot) -> Option<Event> {
    match next_message(&mut slot.data) {
        Err(status) => Some(Event::Failed(status)),
        Ok(Some(message)) => Some(Event::Message(message)),
        Ok(None) => take_answer(slot).map(Event::End),
    }
}

/// How an ended stream ended: its status (trailers-only or trailers), a
/// reset, or the connection's failure.
fn final_status(answer: Answer) -> Result<(), Status> {
    match answer.end {
        End::Stream => {}
        End::Reset(code) => return Err(from_reset(code)),
        End::Failed(status) => return Err(status),
    }
    let head = answer.head.ok_or_else(|| missing(None))?;
    if let Some(status) = from_fields(&head) {
        return status;
    }
    if !answer.data.is_empty() {
        return Err(Status::internal("Unexpected EOF decoding stream."));
    }
    answer
        .trailers
        .as_ref()
        .and_then(from_fields)
        .unwrap_or_else(|| Err(missing(head.http)))
}
