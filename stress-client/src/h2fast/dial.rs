//! Opening one connection to a target, for both client stacks (the fast
//! path's wire driver and tonic, through a connector): TCP with no delay to
//! the target's host and port, then for `https://` a TLS handshake (SNI the
//! target's host, ALPN `h2`; see [`crate::tls`]). Every failure says why
//! ([`DialError`]): refused, unreachable, which certificate check failed.
//! A plaintext connection whose server answers with a TLS record (an alert
//! or a handshake, first byte 0x15 or 0x16: it speaks TLS) fails at that
//! first read with "the server speaks TLS: use https://" instead of waiting
//! for a SETTINGS frame that never comes.

use std::io::{self, BufRead};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::uri::Authority;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::tls::{explain, Tls};

/// What a plaintext connection to a TLS server reads first.
pub const SPEAKS_TLS: &str = "the server speaks TLS: use https://";
/// First bytes of TLS records a TLS server sends a client: alert, handshake.
const TLS_ALERT: u8 = 0x15;
const TLS_HANDSHAKE: u8 = 0x16;

/// Why a connection could not be made.
#[derive(Debug)]
pub struct DialError(String);

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DialError {}

/// An open connection: plaintext or TLS.
pub enum Io {
    Plain(Plain),
    Tls(Box<Secure>),
}

/// A plaintext connection that checks the server's first bytes.
pub struct Plain {
    tcp: TcpStream,
    answered: bool,
}

/// A TLS connection; its errors are told in words.
pub struct Secure {
    stream: TlsStream<TcpStream>,
    host: String,
    client_cert: bool,
}

/// Connects to `authority` (`host:port`), with TLS when `tls` is given.
pub async fn dial(authority: &str, tls: Option<&Tls>) -> Result<Io, DialError> {
    let parsed: Authority = authority
        .parse()
        .map_err(|e| DialError(format!("bad address {authority:?}: {e}")))?;
    let host = parsed.host().trim_matches(['[', ']']).to_owned();
    let port = parsed.port_u16().unwrap_or(if tls.is_some() { 443 } else { 80 });
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| DialError(format!("TCP connect to {host}:{port}: {}", tcp_error(&e))))?;
    tcp.set_nodelay(true)
        .map_err(|e| DialError(format!("TCP_NODELAY: {e}")))?;
    // Every connection of either stack is made here: count it once.
    crate::connections::opened();
    let Some(tls) = tls else {
        return Ok(Io::Plain(Plain { tcp, answered: false }));
    };
    let name = ServerName::try_from(host.clone())
        .map_err(|e| DialError(format!("TLS: {host:?} is not a server name: {e}")))?;
    let stream = tls
        .connector
        .connect(name, tcp)
        .await
        .map_err(|e| DialError(handshake_error(&e, &host, tls)))?;
    Ok(Io::Tls(Box::new(Secure {
        stream,
        host,
        client_cert: tls.client_cert,
    })))
}

fn tcp_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => format!("connection refused (is the server running?) ({e})"),
        _ => e.to_string(),
    }
}

fn handshake_error(e: &io::Error, host: &str, tls: &Tls) -> String {
    if e.kind() == io::ErrorKind::UnexpectedEof && e.get_ref().is_none() {
        return "TLS: the server closed the connection during the handshake \
                (does it speak TLS? for plaintext use http://)"
            .into();
    }
    explain::io_error(e, host, tls.client_cert)
}

impl AsyncRead for Io {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(plain) => plain.poll_read(cx, buf),
            Io::Tls(secure) => {
                let read = ready!(Pin::new(&mut secure.stream).poll_read(cx, buf));
                if read.is_ok() {
                    secure.drain(buf);
                }
                Poll::Ready(read.map_err(|e| secure.told(e)))
            }
        }
    }
}

impl Plain {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.tcp).poll_read(cx, buf))?;
        if !self.answered && buf.filled().len() > before {
            self.answered = true;
            // An HTTP/2 server's first frame is a small SETTINGS frame: its
            // first byte (the length's top byte) is 0, never 0x15 or 0x16.
            if matches!(buf.filled()[before], TLS_ALERT | TLS_HANDSHAKE) {
                return Poll::Ready(Err(io::Error::other(SPEAKS_TLS)));
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl Secure {
    /// Moves into `buf` what else rustls holds decrypted: tokio-rustls
    /// returns one record per read, and each read costs the driver a turn
    /// under the connection's lock, where one socket read brings many.
    fn drain(&mut self, buf: &mut ReadBuf<'_>) {
        let mut reader = self.stream.get_mut().1.reader();
        while buf.remaining() > 0 {
            let chunk = match reader.fill_buf() {
                Ok(chunk) if !chunk.is_empty() => chunk,
                _ => return, // nothing more now (WouldBlock), or the end
            };
            let n = chunk.len().min(buf.remaining());
            buf.put_slice(&chunk[..n]);
            reader.consume(n);
        }
    }

    /// `e` with its TLS cause in words.
    fn told(&self, e: io::Error) -> io::Error {
        match e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
            true => io::Error::new(e.kind(), explain::io_error(&e, &self.host, self.client_cert)),
            false => e,
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(plain) => Pin::new(&mut plain.tcp).poll_write(cx, buf),
            Io::Tls(secure) => {
                let wrote = ready!(Pin::new(&mut secure.stream).poll_write(cx, buf));
                Poll::Ready(wrote.map_err(|e| secure.told(e)))
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(plain) => Pin::new(&mut plain.tcp).poll_write_vectored(cx, bufs),
            Io::Tls(secure) => Pin::new(&mut secure.stream).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(plain) => plain.tcp.is_write_vectored(),
            Io::Tls(secure) => secure.stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(plain) => Pin::new(&mut plain.tcp).poll_flush(cx),
            Io::Tls(secure) => Pin::new(&mut secure.stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(plain) => Pin::new(&mut plain.tcp).poll_shutdown(cx),
            Io::Tls(secure) => Pin::new(&mut secure.stream).poll_shutdown(cx),
        }
    }
}
