//! How many connections the client opened and how many GOAWAYs it received
//! over the run (the report's `connections` section): a server that closes
//! connections (a rapid-reset guard, a restart, a proxy) shows up here
//! rather than only as failed calls, and a client that reconnects in a
//! storm is caught by the count. Counted for the whole process: the fast
//! path's connections and tonic's (setup, reads, settling, and money ops
//! with `--client-stack tonic`); GOAWAYs only on the fast path, which reads
//! the frames itself (tonic's client does not tell).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

static OPENED: AtomicU64 = AtomicU64::new(0);
static GOAWAYS: AtomicU64 = AtomicU64::new(0);

/// The counts (`connections` in the JSON report).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Connections {
    /// Connections opened (TCP connected), the first ones included.
    pub opened: u64,
    /// GOAWAY frames received (fast path only).
    pub goaways: u64,
}

/// One more connection opened.
pub fn opened() {
    OPENED.fetch_add(1, Ordering::Relaxed);
}

/// One more GOAWAY received.
pub fn goaway_received() {
    GOAWAYS.fetch_add(1, Ordering::Relaxed);
}

/// The counts so far.
pub fn counted() -> Connections {
    Connections {
        opened: OPENED.load(Ordering::Relaxed),
        goaways: GOAWAYS.load(Ordering::Relaxed),
    }
}
