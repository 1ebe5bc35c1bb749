//! One unary call on the fast path: open a stream with the request head and
//! the framed body in one go, then read the answer — headers (a
//! trailers-only answer carries its status there), DATA chunks (each
//! released to flow control as it arrives, so the window never closes),
//! exactly one message, and the trailers with the status. Failures are
//! tonic's statuses with tonic's codes, so the op is recorded the same way.

use std::future::poll_fn;

use bytes::Bytes;
use h2::client::ResponseFuture;
use h2::{RecvStream, SendStream};
use http::Response;
use prost::Message;
use tonic::Status;

use super::conn::{Conn, Current, Rpc};
use super::framing::{decode, Deframer};
use super::status::{from_h2, from_headers, missing};

/// Sends `body` (one framed message) as a call of `rpc` on `conn` and
/// decodes the answer. A connection found unusable before the request went
/// out is replaced once (see [`Conn::reconnect`]).
pub async fn call<M: Message + Default>(conn: &Conn, rpc: Rpc, body: Bytes) -> Result<M, Status> {
    let current = conn.current()?;
    let generation = current.generation;
    let (response, mut stream) = match start(conn, current, rpc).await {
        Ok(started) => started,
        Err(_) => {
            let current = conn.reconnect(generation).await?;
            start(conn, current, rpc).await.map_err(|e| from_h2(&e))?
        }
    };
    stream.send_data(body, true).map_err(|e| from_h2(&e))?;
    let response = response.await.map_err(|e| from_h2(&e))?;
    read_answer(response).await
}

/// Opens the call's stream and sends its head.
async fn start(
    conn: &Conn,
    current: Current,
    rpc: Rpc,
) -> Result<(ResponseFuture, SendStream<Bytes>), h2::Error> {
    let mut send = current.send;
    poll_fn(|cx| send.poll_ready(cx)).await?;
    send.send_request(conn.request(rpc), false)
}

/// Reads a unary answer to its end.
async fn read_answer<M: Message + Default>(response: Response<RecvStream>) -> Result<M, Status> {
    let (head, mut body) = response.into_parts();
    // A trailers-only answer: the status is in the headers and nothing follows.
    if let Some(status) = from_headers(&head.headers) {
        status?;
        return Err(Status::internal("Missing response message."));
    }
    let mut deframer = Deframer::default();
    let mut message = None;
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| from_h2(&e))?;
        // Give the window back at once (else the connection stalls at 64 KiB).
        let _ = body.flow_control().release_capacity(chunk.len());
        deframer.push(&chunk);
        while let Some(m) = deframer.next_message()? {
            if message.replace(m).is_some() {
                return Err(Status::internal(
                    "protocol error: more than one message in a unary answer",
                ));
            }
        }
    }
    if !deframer.is_empty() {
        return Err(Status::internal("Unexpected EOF decoding stream."));
    }
    let trailers = body.trailers().await.map_err(|e| from_h2(&e))?;
    match trailers.as_ref().and_then(from_headers) {
        Some(Ok(())) => {}
        Some(Err(status)) => return Err(status),
        None => return Err(missing(head.status)),
    }
    decode(message.ok_or_else(|| Status::internal("Missing response message."))?)
}
