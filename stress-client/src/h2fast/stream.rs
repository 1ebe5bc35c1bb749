//! A `WithdrawStream` on the fast path: one HTTP/2 stream whose request
//! side carries framed `WithdrawRequest`s as they are sent and whose answer
//! side is read as a poll-based state machine (response headers, DATA
//! chunks cut into messages, trailers), so waiting for the next answer can
//! be dropped and resumed without losing anything. The request side works
//! before the response headers arrive: a server may hold its headers until
//! its first answer. On a connection found unusable the stream waits for a
//! new one (requests queue meanwhile). Dropping the stream resets it.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bank::v1 as pb;
use bytes::Bytes;
use h2::client::ResponseFuture;
use h2::{RecvStream, SendStream};
use http::StatusCode;
use tonic::Status;

use super::conn::{Conn, Current, Rpc};
use super::framing::{decode, Deframer};
use super::status::{from_h2, from_headers, missing};

type Reconnect = Pin<Box<dyn Future<Output = Result<Current, Status>> + Send>>;

/// Where the answer side is.
enum Answers {
    /// Waiting for a new connection (the old one was unusable).
    Connecting(Reconnect),
    /// Waiting for the response headers.
    Opening(ResponseFuture),
    /// Reading DATA, then (once `ended`) the trailers.
    Open {
        http: StatusCode,
        body: RecvStream,
        ended: bool,
    },
    /// The final status has been read (and handed out once).
    Done,
}

/// An open `WithdrawStream`.
pub struct Bidi {
    conn: Conn,
    /// The request side, once the stream is open.
    requests: Option<SendStream<Bytes>>,
    /// Requests sent before it was.
    queued: Vec<Bytes>,
    answers: Answers,
    deframer: Deframer,
}

impl Bidi {
    /// Starts a `WithdrawStream` on `conn` (only the head is sent here).
    pub fn open(conn: &Conn) -> Result<Bidi, Status> {
        let current = conn.current()?;
        let generation = current.generation;
        let (requests, answers) = match start(conn, current) {
            Ok((response, requests)) => (Some(requests), Answers::Opening(response)),
            Err(_) => (None, Answers::Connecting(Box::pin(conn.reconnect(generation)))),
        };
        Ok(Bidi {
            conn: conn.clone(),
            requests,
            queued: Vec::new(),
            answers,
            deframer: Deframer::default(),
        })
    }

    /// Sends one framed request (queued while the stream waits for a
    /// connection). A request side that is already closed — the server ended
    /// or reset the stream — takes nothing more, and the answer side tells
    /// why (its status, or the reset), as on tonic's path: so a failed send
    /// is not itself the op's failure.
    pub fn send(&mut self, body: Bytes) {
        match &mut self.requests {
            Some(requests) => {
                if let Err(e) = requests.send_data(body, false) {
                    tracing::debug!("a WithdrawStream took no more requests: {e}");
                }
            }
            None => self.queued.push(body),
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
            if let Some(message) = self.deframer.next_message()? {
                return Poll::Ready(decode(message).map(Some));
            }
            if let Some(end) = ready!(self.poll_answers(cx)) {
                self.answers = Answers::Done;
                return Poll::Ready(end.map(|()| None));
            }
        }
    }

    /// Advances the answer side by one step: `None` when it took in more
    /// bytes (or the headers), `Some` with the final status when it ended.
    fn poll_answers(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<(), Status>>> {
        match &mut self.answers {
            Answers::Connecting(reconnect) => {
                let current = ready!(reconnect.as_mut().poll(cx));
                Poll::Ready(self.on_connected(current).err().map(Err))
            }
            Answers::Opening(response) => {
                let response = ready!(Pin::new(response).poll(cx)).map_err(|e| from_h2(&e));
                Poll::Ready(self.on_headers(response))
            }
            Answers::Open {
                body, ended: false, ..
            } => match ready!(body.poll_data(cx)) {
                Some(Ok(chunk)) => {
                    let _ = body.flow_control().release_capacity(chunk.len());
                    self.deframer.push(&chunk);
                    Poll::Ready(None)
                }
                Some(Err(e)) => Poll::Ready(Some(Err(from_h2(&e)))),
                None if !self.deframer.is_empty() => {
                    Poll::Ready(Some(Err(Status::internal("Unexpected EOF decoding stream."))))
                }
                None => {
                    self.answers.end_data();
                    Poll::Ready(None)
                }
            },
            Answers::Open { body, http, .. } => {
                let trailers = ready!(body.poll_trailers(cx)).map_err(|e| from_h2(&e));
                Poll::Ready(Some(match trailers {
                    Ok(trailers) => trailers
                        .as_ref()
                        .and_then(from_headers)
                        .unwrap_or_else(|| Err(missing(*http))),
                    Err(status) => Err(status),
                }))
            }
            Answers::Done => Poll::Ready(Some(Ok(()))),
        }
    }

    /// A new connection is there: opens the stream and sends what is queued.
    fn on_connected(&mut self, current: Result<Current, Status>) -> Result<(), Status> {
        let (response, mut requests) = start(&self.conn, current?).map_err(|e| from_h2(&e))?;
        for body in self.queued.drain(..) {
            // As in `send`: if it is closed already, the answer side says why.
            if requests.send_data(body, false).is_err() {
                break;
            }
        }
        self.requests = Some(requests);
        self.answers = Answers::Opening(response);
        Ok(())
    }

    /// The response headers arrived: a trailers-only answer ends the stream.
    fn on_headers(
        &mut self,
        response: Result<http::Response<RecvStream>, Status>,
    ) -> Option<Result<(), Status>> {
        let (head, body) = match response {
            Ok(response) => response.into_parts(),
            Err(status) => return Some(Err(status)),
        };
        if let Some(status) = from_headers(&head.headers) {
            return Some(status);
        }
        self.answers = Answers::Open {
            http: head.status,
            body,
            ended: false,
        };
        None
    }
}

impl Answers {
    fn end_data(&mut self) {
        if let Answers::Open { ended, .. } = self {
            *ended = true;
        }
    }
}

/// Opens the stream on `current` and sends its head.
fn start(conn: &Conn, current: Current) -> Result<(ResponseFuture, SendStream<Bytes>), h2::Error> {
    let mut send = current.send;
    send.send_request(conn.request(Rpc::WithdrawStream), false)
}
