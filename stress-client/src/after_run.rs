//! What the phases after the load share — settling unknown ops
//! ([`crate::settle`]) and reading every account's final state
//! ([`crate::final_reads`]): the connections and bounds of their calls, and
//! which failures are worth another try on the next connection.
//!
//! Each call is bounded by `--timeout` on the client's clock (no deadline is
//! sent: per-call timers on both sides would cost a third of the time of a
//! million reads, and the client resets a call it gives up on); each phase by
//! the instant its caller gives.

use std::time::{Duration, Instant};

use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::transport::Bank;

/// How an after-run phase may call the server: its connections and bounds.
#[derive(Debug, Clone)]
pub struct Calls {
    pub clients: Vec<Bank>,
    /// Deadline of each call (`--timeout`).
    pub timeout: Duration,
    /// After this, no new call starts.
    pub until: Instant,
}

impl Calls {
    /// Calls over `channels`, each bounded by `timeout`, none starting after `until`.
    pub fn new(channels: &[Channel], timeout: Duration, until: Instant) -> Self {
        Calls {
            clients: channels.iter().cloned().map(crate::transport::bank).collect(),
            timeout,
            until,
        }
    }

    /// The connections from the `i`th on, wrapping around: where a call
    /// that failed on one connection (its server died) is tried next. With
    /// several `--target`s neighbouring connections go to different servers.
    pub(crate) fn from(&self, i: usize) -> Vec<Bank> {
        // Calls are spread over the connections: the `i`th starts on the `i`th.
        let n = self.clients.len();
        (0..n).map(|k| self.clients[(i + k) % n].clone()).collect()
    }

    /// The whole phase is over by then: the last call may start just before `until`.
    pub(crate) fn hard_stop(&self) -> Instant {
        self.until + self.timeout
    }
}

/// Statuses after which asking again can help.
pub(crate) fn retryable(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Aborted
            | Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            // What tonic's client answers when its own deadline passes.
            | Code::Cancelled
    )
}
