//! The handshake guard of the gRPC port (`--handshake-timeout`): an accepted
//! connection is handed to tonic only once it has finished TLS (when on) and
//! sent the HTTP/2 client preface and a whole first SETTINGS frame, all within
//! the timeout; otherwise it is closed. A socket that sends nothing (or a TLS
//! port that never sees a ClientHello) thus holds its connection permit for
//! the timeout at most, and never reaches hyper: while it waits it costs a
//! task and a 33-byte buffer, not an HTTP/2 connection's state. The bytes read
//! here are replayed to hyper first ([`Replayed`]), so it sees the stream
//! untouched.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;

/// What every HTTP/2 client sends first (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An HTTP/2 frame header: length (3), type (1), flags (1), stream id (4).
const FRAME_HEADER_BYTES: usize = 9;
/// The frame type of SETTINGS, which must follow the preface.
const SETTINGS_FRAME: u8 = 0x4;
/// The largest first SETTINGS payload: a frame may not exceed the default
/// SETTINGS_MAX_FRAME_SIZE (16 KiB) before the peer's settings are known.
const MAX_SETTINGS_PAYLOAD_BYTES: usize = 16_384;

/// The transport under HTTP/2: TCP, or TLS over it.
pub type Transport = Either<TcpStream, TlsStream<TcpStream>>;

/// Why a connection was closed before it was served.
#[derive(Debug)]
pub enum Failure {
    /// TLS, preface and SETTINGS did not all arrive within the timeout.
    TimedOut,
    /// The TLS handshake failed, or the bytes are not an HTTP/2 preface and
    /// SETTINGS frame, or the peer closed or reset first.
    Failed(io::Error),
}

impl Failure {
    /// The reason as `bank_connections_refused_total` labels it.
    pub fn reason(&self) -> &'static str {
        match self {
            Failure::TimedOut => "handshake_timeout",
            Failure::Failed(_) => "handshake_failed",
        }
    }
}

/// Finishes TLS (with `tls`) and reads the preface and first SETTINGS frame
/// of `stream`, all within `timeout`. On failure `refused` is told why while
/// the socket is still open, so that whoever sees it closed sees it counted.
pub async fn complete(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    timeout: Duration,
    refused: impl FnOnce(&Failure),
) -> Option<Replayed<Transport>> {
    let mut handshake = std::pin::pin!(establish(stream, tls));
    let (failure, _socket) = tokio::select! {
        done = &mut handshake => match done {
            Ok(io) => return Some(io),
            Err((e, socket)) => (Failure::Failed(e), Some(socket)),
        },
        () = tokio::time::sleep(timeout) => (Failure::TimedOut, None),
    };
    // The socket (or the timed-out handshake holding it) is still open here;
    // it closes on return.
    refused(&failure);
    None
}

/// TLS (when on), then the preface and SETTINGS; on failure, the error and
/// the transport (closed when dropped).
async fn establish(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
) -> Result<Replayed<Transport>, (io::Error, Transport)> {
    let mut io = match tls {
        None => Either::Left(stream),
        Some(acceptor) => match acceptor.accept(stream).into_fallible().await {
            Ok(tls) => Either::Right(tls),
            Err((e, tcp)) => return Err((e, Either::Left(tcp))),
        },
    };
    match read_preface(&mut io).await {
        Ok(prefix) => Ok(Replayed::new(prefix, io)),
        Err(e) => Err((e, io)),
    }
}

/// Reads the client preface and a whole SETTINGS frame; returns those bytes.
pub async fn read_preface(io: &mut (impl AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0; PREFACE.len()];
    io.read_exact(&mut bytes).await?;
    if bytes != PREFACE {
        return Err(not_http2("no HTTP/2 client preface"));
    }
    bytes.resize(PREFACE.len() + FRAME_HEADER_BYTES, 0);
    io.read_exact(&mut bytes[PREFACE.len()..]).await?;
    let header = &bytes[PREFACE.len()..];
    if header[3] != SETTINGS_FRAME {
        return Err(not_http2("the preface is not followed by SETTINGS"));
    }
    let payload = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
    if payload > MAX_SETTINGS_PAYLOAD_BYTES {
        return Err(not_http2("a first SETTINGS frame over 16 KiB"));
    }
    let start = bytes.len();
    bytes.resize(start + payload, 0);
    io.read_exact(&mut bytes[start..]).await?;
    Ok(bytes)
}

fn not_http2(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// A stream whose first bytes, already read, are read again before the rest.
#[derive(Debug)]
pub struct Replayed<T> {
    prefix: Vec<u8>,
    consumed: usize,
    inner: T,
}

impl<T> Replayed<T> {
    /// `inner`, with `prefix` read first.
    pub fn new(prefix: Vec<u8>, inner: T) -> Self {
        Replayed {
            prefix,
            consumed: 0,
            inner,
        }
    }

    /// The stream under the replayed bytes.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Replayed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let left = &this.prefix[this.consumed..];
        if left.is_empty() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let n = left.len().min(buf.remaining());
        buf.put_slice(&left[..n]);
        this.consumed += n;
        if this.consumed == this.prefix.len() {
            this.prefix = Vec::new();
            this.consumed = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Replayed<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_frame(payload: usize) -> Vec<u8> {
        let len = u32::try_from(payload).unwrap().to_be_bytes();
        let mut frame = vec![len[1], len[2], len[3], SETTINGS_FRAME, 0, 0, 0, 0, 0];
        frame.resize(FRAME_HEADER_BYTES + payload, 0);
        frame
    }

    async fn read(bytes: &[u8]) -> io::Result<Vec<u8>> {
        read_preface(&mut &bytes[..]).await
    }

    #[tokio::test]
    async fn a_preface_and_settings_are_read_whole_and_nothing_more() {
        let mut wire = PREFACE.to_vec();
        wire.extend(settings_frame(12));
        let sent = wire.clone();
        wire.extend(b"next frame");
        assert_eq!(read(&wire).await.unwrap(), sent);
    }

    #[tokio::test]
    async fn anything_else_is_refused() {
        let http1 = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        assert_eq!(read(&http1).await.unwrap_err().kind(), io::ErrorKind::InvalidData);
        let mut ping_first = PREFACE.to_vec();
        ping_first.extend([0, 0, 8, 0x6, 0, 0, 0, 0, 0]);
        assert!(read(&ping_first).await.is_err());
        let mut huge = PREFACE.to_vec();
        huge.extend(&settings_frame(MAX_SETTINGS_PAYLOAD_BYTES + 6)[..FRAME_HEADER_BYTES]);
        assert!(read(&huge).await.is_err());
        let cut = &PREFACE[..10];
        assert_eq!(read(cut).await.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn replayed_bytes_come_first_then_the_stream() {
        let mut replayed = Replayed::new(b"abc".to_vec(), &b"defg"[..]);
        let mut out = [0u8; 2];
        replayed.read_exact(&mut out).await.unwrap();
        assert_eq!(&out, b"ab");
        let mut rest = Vec::new();
        replayed.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"cdefg");
    }
}
