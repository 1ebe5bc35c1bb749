//! The one task of a fast-path connection: it reads what the server sends
//! (frames handled under the connection's lock, callers woken) and writes
//! what callers queued — everything queued since its last write in one
//! write, so many calls share one syscall. It ends when the connection
//! does: closed by either side, or a protocol error (its GOAWAY flushed
//! first). It runs on any byte stream: plaintext TCP or TLS
//! ([`crate::h2fast::dial::Io`]); with TLS, bytes a write left encrypted
//! but unsent are flushed whenever nothing else is queued.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::Status;

use super::link::Link;

/// Bytes read per read call at most.
const READ_CHUNK: usize = 64 << 10;
/// Rounds of reading and writing before the task yields to the callers it woke.
const ROUNDS_PER_POLL: usize = 16;

/// The connection and its buffers.
struct Io<T> {
    tcp: T,
    input: BytesMut,
    output: BytesMut,
    written: usize,
    /// Written since the last flush.
    unflushed: bool,
}

enum Step {
    Progress,
    Idle,
    Done,
}

/// Runs the connection `link` on `tcp` until it ends.
pub async fn drive<T: AsyncRead + AsyncWrite + Unpin>(link: Arc<Link>, tcp: T) {
    let mut io = Io {
        tcp,
        input: BytesMut::with_capacity(READ_CHUNK),
        output: BytesMut::with_capacity(READ_CHUNK),
        written: 0,
        unflushed: false,
    };
    poll_fn(|cx| poll_drive(&link, &mut io, cx)).await;
}

fn poll_drive<T: AsyncRead + AsyncWrite + Unpin>(
    link: &Link,
    io: &mut Io<T>,
    cx: &mut Context<'_>,
) -> Poll<()> {
    for _ in 0..ROUNDS_PER_POLL {
        let read = poll_read(link, io, cx);
        let wrote = poll_write(link, io, cx);
        match (read, wrote) {
            (Step::Done, _) | (_, Step::Done) => return Poll::Ready(()),
            (Step::Idle, Step::Idle) => return Poll::Pending,
            _ => {}
        }
    }
    cx.waker().wake_by_ref();
    Poll::Pending
}

fn poll_read<T: AsyncRead + Unpin>(link: &Link, io: &mut Io<T>, cx: &mut Context<'_>) -> Step {
    if link.lock().closed.is_some() {
        return Step::Idle; // only the last writes remain
    }
    io.input.reserve(READ_CHUNK);
    // tokio's own read: a short read clears the readiness, so a drained
    // socket costs no second (WouldBlock) read.
    match tokio_util::io::poll_read_buf(Pin::new(&mut io.tcp), cx, &mut io.input) {
        Poll::Pending => Step::Idle,
        Poll::Ready(Ok(0)) => broken(link, "the server closed the connection"),
        Poll::Ready(Ok(_)) => {
            let mut st = link.lock();
            st.on_bytes(&mut io.input);
            st.wake_all();
            Step::Progress
        }
        Poll::Ready(Err(e)) => broken(link, &e.to_string()),
    }
}

fn poll_write<T: AsyncWrite + Unpin>(link: &Link, io: &mut Io<T>, cx: &mut Context<'_>) -> Step {
    if io.written == io.output.len() {
        io.output.clear();
        io.written = 0;
        if io.unflushed {
            // TLS may hold records a short write left behind (a no-op for
            // TCP); when pending, the socket wakes this task.
            match Pin::new(&mut io.tcp).poll_flush(cx) {
                Poll::Ready(Ok(())) => io.unflushed = false,
                Poll::Pending => {}
                Poll::Ready(Err(e)) => return broken(link, &e.to_string()),
            }
        }
        let mut st = link.lock();
        if st.out.is_empty() {
            st.flush_scheduled = false;
            if st.closed.is_some() {
                return Step::Done;
            }
            if !st.flush_waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                st.flush_waker = Some(cx.waker().clone());
            }
            return Step::Idle;
        }
        std::mem::swap(&mut st.out, &mut io.output);
    }
    poll_write_out(link, io, cx)
}

/// Writes what is left of `io.output`.
fn poll_write_out<T: AsyncWrite + Unpin>(link: &Link, io: &mut Io<T>, cx: &mut Context<'_>) -> Step {
    match Pin::new(&mut io.tcp).poll_write(cx, &io.output[io.written..]) {
        Poll::Pending => Step::Idle,
        Poll::Ready(Ok(0)) => broken(link, "the connection takes no more bytes"),
        Poll::Ready(Ok(n)) => {
            io.written += n;
            io.unflushed = true;
            Step::Progress
        }
        Poll::Ready(Err(e)) => broken(link, &e.to_string()),
    }
}

/// The socket failed or closed: every call still waiting fails UNAVAILABLE.
fn broken(link: &Link, why: &str) -> Step {
    link.fail(Status::unavailable(format!("connection error: {why}")));
    Step::Done
}
