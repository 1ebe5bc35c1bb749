//! Who gets a connection on the gRPC port, all in one place:
//! - `--max-connections`: the accept loop takes a permit before it accepts,
//!   and waits (leaving new connections in the kernel's backlog) while all are
//!   taken;
//! - `--max-connections-per-ip`: a connection from an address that already
//!   has that many is closed at once, without taking a permit, and the loop
//!   goes on accepting others;
//! - `--handshake-timeout`: each accepted connection is handed to tonic only
//!   once [`crate::admission::handshake`] completed (TLS when on, the HTTP/2 preface and
//!   first SETTINGS); one that does not in time is closed.
//!
//! A connection gives its permit and its address's count back when it
//! closes, whenever that is. Refusals are counted in
//! `bank_connections_refused_total{listener="grpc"}`.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tracing::{debug, warn};

use crate::admission::coalesce::Coalesced;
use crate::admission::handshake::{self, Replayed, Transport};
use crate::observe::metrics::Metrics;

/// The pause after a failed accept (say, out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
/// `bank_connections_refused_total`'s `listener` label for this port.
const LISTENER: &str = "grpc";
/// The reason label of a connection closed for `--max-connections-per-ip`.
const PER_IP: &str = "per_ip";

/// The gRPC port's connection limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served (or handshaking) at once.
    pub max_connections: usize,
    /// Of those, from one IP address.
    pub max_per_ip: usize,
    /// The time to finish TLS and send the preface and first SETTINGS.
    pub handshake_timeout: Duration,
}

/// Connections open per IP address.
#[derive(Debug, Default)]
struct PerIp {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection counted against its address; uncounted when dropped.
#[derive(Debug)]
struct IpClaim {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    /// Counts a connection from `ip`, unless it already has `max`.
    fn claim(table: &Arc<PerIp>, ip: IpAddr, max: usize) -> Option<IpClaim> {
        let mut open = table.open.lock();
        let count = open.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(IpClaim {
            table: Arc::clone(table),
            ip,
        })
    }
}

impl Drop for IpClaim {
    fn drop(&mut self) {
        let mut open = self.table.open.lock();
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// What an admitted connection holds until it closes.
#[derive(Debug)]
struct Admission {
    _permit: OwnedSemaphorePermit,
    _ip: IpClaim,
}

/// An accepted connection past its handshake, as tonic serves it.
#[derive(Debug)]
pub struct Served {
    /// Its writes gathered until a flush ([`Coalesced`]).
    io: Coalesced<Replayed<Transport>>,
    info: TcpConnectInfo,
    _admission: Admission,
}

/// The connections tonic serves: admitted and past their handshake. Dropping
/// it stops the accept loop, closes the listener and every connection still
/// in its handshake.
pub struct Incoming {
    ready: mpsc::UnboundedReceiver<Served>,
    accept_loop: tokio::task::JoinHandle<()>,
}

/// The gRPC port's connections under `limits`, over TLS when `tls` is given;
/// refusals counted in `metrics` (when served).
pub fn incoming(
    listener: TcpListener,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    metrics: Option<Arc<Metrics>>,
) -> Incoming {
    let (ready, receiver) = mpsc::unbounded_channel();
    let acceptor = Acceptor {
        listener,
        permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
        per_ip: Arc::default(),
        limits,
        tls,
        metrics,
    };
    Incoming {
        ready: receiver,
        accept_loop: tokio::spawn(acceptor.run(ready)),
    }
}

/// The accept loop's state.
struct Acceptor {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    per_ip: Arc<PerIp>,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    metrics: Option<Arc<Metrics>>,
}

impl Acceptor {
    /// Admits connections and runs their handshakes side by side; sends each
    /// connection past its handshake to `ready`. The unbounded channel holds at
    /// most `max_connections` (each item holds a permit).
    async fn run(self, ready: mpsc::UnboundedSender<Served>) {
        let mut handshakes = JoinSet::new();
        loop {
            tokio::select! {
                Some(done) = handshakes.join_next() => {
                    let Ok(Some(served)) = done else { continue };
                    if ready.send(served).is_err() {
                        return;
                    }
                }
                (stream, admission) = self.admit() => {
                    handshakes.spawn(self.handshake(stream, admission));
                }
            }
        }
    }

    /// The next connection within the limits, with what it holds. Cancel
    /// safe: it only awaits a permit and `accept`.
    async fn admit(&self) -> (TcpStream, Admission) {
        let Ok(permit) = Arc::clone(&self.permits).acquire_owned().await else {
            // The semaphore is never closed.
            return std::future::pending().await;
        };
        loop {
            let stream = self.accept().await;
            let Some(ip) = stream.peer_addr().ok().map(|a| a.ip().to_canonical()) else {
                continue;
            };
            match PerIp::claim(&self.per_ip, ip, self.limits.max_per_ip) {
                Some(claim) => {
                    let admission = Admission {
                        _permit: permit,
                        _ip: claim,
                    };
                    return (stream, admission);
                }
                None => {
                    debug!(%ip, "connection closed: --max-connections-per-ip reached");
                    self.refused(PER_IP);
                }
            }
        }
    }

    /// The next TCP connection; accept errors are logged and waited out, never fatal.
    async fn accept(&self) -> TcpStream {
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) => {
                    // Without TCP_NODELAY small replies wait for delayed ACKs (~40 ms tails).
                    if let Err(e) = stream.set_nodelay(true) {
                        warn!("TCP_NODELAY: {e}");
                    }
                    return stream;
                }
                Err(e) => {
                    warn!("accept failed: {e}");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            }
        }
    }

    /// The handshake of one admitted connection: the connection ready to
    /// serve, or `None` once it is closed (and counted).
    fn handshake(
        &self,
        stream: TcpStream,
        admission: Admission,
    ) -> impl std::future::Future<Output = Option<Served>> + Send + 'static {
        let (tls, timeout, metrics) = (
            self.tls.clone(),
            self.limits.handshake_timeout,
            self.metrics.clone(),
        );
        async move {
            let info = stream.connect_info();
            let refused = |failure: &handshake::Failure| {
                debug!(peer = ?info.remote_addr, ?failure, "connection closed before its handshake completed");
                if let Some(m) = &metrics {
                    m.connection_refused(LISTENER, failure.reason());
                }
            };
            let io = handshake::complete(stream, tls, timeout, refused).await?;
            Some(Served {
                io: Coalesced::new(io),
                info,
                _admission: admission,
            })
        }
    }

    fn refused(&self, reason: &str) {
        if let Some(m) = &self.metrics {
            m.connection_refused(LISTENER, reason);
        }
    }
}

impl Stream for Incoming {
    type Item = io::Result<Served>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.ready.poll_recv(cx).map(|served| served.map(Ok))
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl Connected for Served {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for Served {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Served {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_counted_up_to_its_cap_and_released_on_drop() {
        let table = Arc::new(PerIp::default());
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let first = PerIp::claim(&table, a, 2).unwrap();
        let second = PerIp::claim(&table, a, 2).unwrap();
        assert!(PerIp::claim(&table, a, 2).is_none(), "a third from one address");
        let other = PerIp::claim(&table, b, 2).expect("another address has its own count");
        drop(first);
        let again = PerIp::claim(&table, a, 2).expect("a closed connection is uncounted");
        drop((second, other, again));
        assert!(
            table.open.lock().is_empty(),
            "no entry stays for an address with none open"
        );
    }
}
