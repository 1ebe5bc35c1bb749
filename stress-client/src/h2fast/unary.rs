//! One unary call on the fast path: open a stream with the request head and
//! the framed body in one go (written into the connection's buffer, sent
//! with the other calls of the same turn), then wait for the stream to end
//! and read its answer — headers (a trailers-only answer carries its status
//! there), exactly one message, and the trailers with the status. Failures
//! are tonic's statuses with tonic's codes, so the op is recorded the same way.

use std::future::poll_fn;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use tonic::Status;

use super::conn::{Conn, FastCall};
use super::framing::{decode, peek_message};
use super::wire::status::{from_fields, from_reset, missing};
use super::wire::{take_answer, Answer, End, Link, StreamRef, Waiting};

/// Sends `body` (one framed message) as a call of `rpc` on `conn` and
/// decodes the answer. A connection found unusable before the request went
/// out is replaced once (see [`Conn::reconnect`]).
pub async fn call<M: Message + Default>(conn: &Conn, rpc: FastCall, body: Bytes) -> Result<M, Status> {
    let current = conn.current()?;
    let stream = match open(&current.link, rpc, &body).await {
        Ok(stream) => stream,
        Err(_) => {
            let current = conn.reconnect(current.generation).await?;
            open(&current.link, rpc, &body).await?
        }
    };
    let answer = poll_fn(|cx| stream.poll(cx, take_answer)).await;
    drop(stream);
    read_answer(answer)
}

/// Opens the call's stream with its head and whole body.
async fn open(link: &Arc<Link>, rpc: FastCall, body: &[u8]) -> Result<StreamRef, Status> {
    let mut waiting = Waiting::new(Arc::clone(link));
    poll_fn(|cx| waiting.poll_open(cx, rpc, Some(body), true)).await
}

/// Reads a unary answer.
fn read_answer<M: Message + Default>(answer: Answer) -> Result<M, Status> {
    let Answer {
        head,
        trailers,
        data,
        end,
    } = answer;
    match end {
        End::Stream => {}
        End::Reset(code) => return Err(from_reset(code)),
        End::Failed(status) => return Err(status),
    }
    let head = head.ok_or_else(|| missing(None))?;
    // A trailers-only answer: the status is in the headers and nothing follows.
    if let Some(status) = from_fields(&head) {
        status?;
        return Err(Status::internal("Missing response message."));
    }
    let (mut message, mut rest) = (None, &data[..]);
    while let Some((m, end)) = peek_message(rest)? {
        if message.replace(m).is_some() {
            return Err(Status::internal(
                "protocol error: more than one message in a unary answer",
            ));
        }
        rest = &rest[end..];
    }
    if !rest.is_empty() {
        return Err(Status::internal("Unexpected EOF decoding stream."));
    }
    match trailers.as_ref().and_then(from_fields) {
        Some(Ok(())) => {}
        Some(Err(status)) => return Err(status),
        None => return Err(missing(head.http)),
    }
    decode(message.ok_or_else(|| Status::internal("Missing response message."))?)
}
