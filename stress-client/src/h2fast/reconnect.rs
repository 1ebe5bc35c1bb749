//! The reconnects of one fast-path connection slot, owned by a task of the
//! connection (spawned on the runtime that opened it), not by a call: the
//! task waits until the live connection takes no new streams (a GOAWAY,
//! closed, stream ids used up), then makes one attempt at a time, spaced
//! by [`Backoff`], until one succeeds, and publishes each outcome. Calls
//! that find the connection unusable only wait for the next outcome,
//! bounded by their own deadline, which never cancels an attempt: with a
//! 10 ms timeout and a server slower than that to answer a handshake, a
//! call-owned attempt was dropped half-made by every call in turn (7,156
//! connections in a 6 s run against grpc-js, issue 22). Every failed
//! attempt counts in the back-off, and so does a connection that ended
//! before it carried a call; the back-off resets once a connection has
//! carried calls. An attempt is cut short only when the connection's last
//! handle is gone.

use std::future::{poll_fn, Future};
use std::sync::Arc;

use tokio::sync::{watch, Notify};
use tonic::Status;

use super::backoff::Backoff;
use super::wire::Link;

/// A connection, and which one it is.
#[derive(Clone)]
pub struct Current {
    pub generation: u64,
    pub link: Arc<Link>,
}

/// What the task publishes: the live connection, and the failed attempts
/// so far (how many, and why the last one failed).
struct Published {
    current: Current,
    failures: u64,
    why: String,
}

/// One connection slot: the live connection and the task that replaces it.
pub struct Slot {
    published: watch::Sender<Published>,
    /// Told once the connection's last handle is gone.
    stop: Notify,
}

impl Slot {
    /// A slot whose live connection is `link`; its task, spawned on the
    /// current runtime, makes each new connection with `dial`.
    pub fn start<D, F>(link: Arc<Link>, dial: D) -> Arc<Slot>
    where
        D: Fn() -> F + Send + Sync + 'static,
        F: Future<Output = Result<Arc<Link>, String>> + Send + 'static,
    {
        let published = Published {
            current: Current { generation: 0, link },
            failures: 0,
            why: String::new(),
        };
        let slot = Arc::new(Slot {
            published: watch::Sender::new(published),
            stop: Notify::new(),
        });
        tokio::spawn(run(Arc::clone(&slot), dial));
        slot
    }

    /// The live connection (it may have just become unusable).
    pub fn current(&self) -> Current {
        self.published.borrow().current.clone()
    }

    /// A connection newer than `broken` (the generation a call found
    /// unusable), once the task has one; UNAVAILABLE with the reason if
    /// an attempt fails first. Dropping the wait cancels nothing.
    pub fn newer_than(&self, broken: u64) -> impl Future<Output = Result<Current, Status>> + Send + 'static {
        let mut seen = self.published.subscribe();
        let failures_before = seen.borrow().failures;
        async move {
            loop {
                {
                    let now = seen.borrow_and_update();
                    if now.current.generation != broken {
                        return Ok(now.current.clone());
                    }
                    if now.failures != failures_before {
                        return Err(Status::unavailable(now.why.clone()));
                    }
                }
                if seen.changed().await.is_err() {
                    return Err(Status::unavailable("connection error: the client is closing"));
                }
            }
        }
    }

    /// The last handle is gone: the task ends, and the live connection
    /// once its streams have.
    pub fn stop(&self) {
        self.stop.notify_one();
    }
}

/// The slot's task: one reconnect each time the live connection becomes
/// unusable, until [`Slot::stop`].
async fn run<D, F>(slot: Arc<Slot>, dial: D)
where
    D: Fn() -> F,
    F: Future<Output = Result<Arc<Link>, String>>,
{
    let mut backoff = Backoff::default();
    loop {
        let link = slot.current().link;
        tokio::select! {
            () = poll_fn(|cx| link.poll_unusable(cx)) => {}
            () = slot.stop.notified() => {
                link.shutdown();
                return;
            }
        }
        // A connection the server ends before it carried a single call (it
        // accepts, then closes) is no success: reconnecting at once would
        // be a storm of its own.
        if link.carried_streams() {
            backoff.succeeded();
        } else {
            backoff.failed(tokio::time::Instant::now());
        }
        tokio::select! {
            replaced = reconnect(&slot, &dial, &mut backoff) => replaced,
            () = slot.stop.notified() => return,
        }
    }
}

/// Attempts, spaced by `backoff`, until one succeeds; each outcome is
/// published as it comes.
async fn reconnect<D, F>(slot: &Slot, dial: &D, backoff: &mut Backoff)
where
    D: Fn() -> F,
    F: Future<Output = Result<Arc<Link>, String>>,
{
    loop {
        if let Some(at) = backoff.retry_at() {
            tokio::time::sleep_until(at).await;
        }
        match dial().await {
            Ok(link) => {
                slot.published.send_modify(|p| {
                    p.current = Current {
                        generation: p.current.generation + 1,
                        link,
                    };
                });
                return;
            }
            Err(why) => {
                backoff.failed(tokio::time::Instant::now());
                slot.published.send_modify(|p| {
                    p.failures += 1;
                    p.why = why;
                });
            }
        }
    }
}
