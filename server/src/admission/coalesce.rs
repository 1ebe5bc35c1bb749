//! Fewer, larger socket writes: a served connection's writes are gathered
//! in a buffer, and a flush first lets the runtime run every other task that
//! is ready once, then writes all that was gathered in one go.
//!
//! Why: the HTTP/2 connection task flushes each time it is polled, and it is
//! polled after every answer a stream hands it. With 64 streams answering
//! one message each per read, that was 0.88 `writev` per stream withdrawal
//! (bench P5; each a trip through the loopback TCP stack on both sides).
//! The answers of the streams woken by one read now leave in about one
//! write. The cost is one extra turn of the runtime per flush: when nothing
//! else is ready that is the connection task polled again at once.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// Bytes gathered before a write waits for the socket instead: the most a
/// connection holds beyond what the kernel took.
pub const COALESCE_MAX_BYTES: usize = 64 * 1024;
/// A buffer grown past this is let go once written out: thousands of
/// connections each keeping what their biggest burst needed would add up.
pub const COALESCE_RETAIN_BYTES: usize = 16 * 1024;

/// `T` with its writes gathered until a flush (see the module docs).
#[derive(Debug)]
pub struct Coalesced<T> {
    inner: T,
    buf: Vec<u8>,
    /// How much of `buf` the socket already took.
    written: usize,
    /// A flush has already let the other tasks run once.
    yielded: bool,
}

impl<T> Coalesced<T> {
    pub fn new(inner: T) -> Self {
        Coalesced {
            inner,
            buf: Vec::new(),
            written: 0,
            yielded: false,
        }
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

impl<T: AsyncWrite + Unpin> Coalesced<T> {
    /// Writes out everything gathered.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.buf.clear();
        if self.buf.capacity() > COALESCE_RETAIN_BYTES {
            self.buf = Vec::new();
        }
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    /// Room for more: once the buffer is full it is written out first.
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.len() >= COALESCE_MAX_BYTES {
            ready!(self.poll_drain(cx))?;
        }
        Poll::Ready(Ok(COALESCE_MAX_BYTES - self.buf.len()))
    }
}

/// What tonic learns of the connection: that of the stream underneath.
impl<T: Connected> Connected for Coalesced<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> T::ConnectInfo {
        self.inner.connect_info()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Coalesced<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalesced<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let room = ready!(this.poll_room(cx))?;
        let n = data.len().min(room);
        this.buf.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut room = ready!(this.poll_room(cx))?;
        let mut took = 0;
        for data in bufs {
            let n = data.len().min(room);
            this.buf.extend_from_slice(&data[..n]);
            (took, room) = (took + n, room - n);
            if room == 0 {
                break;
            }
        }
        Poll::Ready(Ok(took))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.buf.is_empty() {
            this.yielded = false;
            return Pin::new(&mut this.inner).poll_flush(cx);
        }
        if !this.yielded {
            // Woken now, the task is queued behind the tasks already ready
            // (tokio runs a task that woke itself after them): the answers
            // they make join this write.
            this.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        ready!(this.poll_drain(cx))?;
        this.yielded = false;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn writes_leave_only_at_a_flush_and_all_of_them() {
        let (near, mut far) = tokio::io::duplex(1 << 20);
        let mut io = Coalesced::new(near);
        io.write_all(b"hello ").await.unwrap();
        io.write_all(b"world").await.unwrap();
        let mut got = [0u8; 11];
        let early = tokio::time::timeout(std::time::Duration::from_millis(20), far.read(&mut got)).await;
        assert!(early.is_err(), "nothing may leave before the flush");
        io.flush().await.unwrap();
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello world");
    }

    #[tokio::test]
    async fn a_full_buffer_is_written_out_without_a_flush() {
        let (near, mut far) = tokio::io::duplex(1 << 20);
        let mut io = Coalesced::new(near);
        let big = vec![7u8; COALESCE_MAX_BYTES + 10];
        io.write_all(&big).await.unwrap();
        let mut got = vec![0u8; COALESCE_MAX_BYTES];
        far.read_exact(&mut got).await.unwrap();
        assert!(got.iter().all(|&b| b == 7));
        io.shutdown().await.unwrap();
        assert!(
            io.buf.capacity() <= COALESCE_RETAIN_BYTES,
            "a big buffer is let go"
        );
        let mut rest = Vec::new();
        far.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest.len(), 10, "shutdown writes out what is left");
    }
}
