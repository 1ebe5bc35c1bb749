//! Missing sequence numbers on one account: what the replay (`walk`,
//! `finals`) hands the exact search, and the time windows the search sets on
//! them before it looks for the ops of unknown outcome that filled them.

/// Missing sequence numbers on one account, found by the replay.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gap {
    pub account: u32,
    pub first_seq: u64,
    pub missing: u64,
    /// The replayed balance before the first missing number.
    pub before: i128,
    /// The balance after the last missing number: the one the next recorded
    /// op implies it saw, or the final balance for a trailing gap.
    pub after: i128,
    /// The entry of the recorded view after the gap (`None`: the final read).
    pub next: Option<u32>,
    /// When the missing ops can have taken effect (set by the search): after
    /// every earlier op on the account was sent, before every later one was
    /// answered. Both legs of a transfer took effect at one moment, so their
    /// gaps' windows must meet.
    pub window_ns: (u64, u64),
    /// Where each missing number's own window starts in the search's
    /// slot windows (reads inside the gap narrow them), or
    /// [`NO_SLOT_WINDOWS`]: every number has the gap's window.
    pub slot_windows: u32,
    /// Where its windows on each process's own clock start (merged
    /// histories; see `own::OwnWindows`), or [`NO_OWN_WINDOWS`].
    pub own_windows: u32,
}

/// A gap without windows of its own per missing number.
pub(crate) const NO_SLOT_WINDOWS: u32 = u32::MAX;

/// A gap without windows on each process's own clock (not merged).
pub(crate) const NO_OWN_WINDOWS: u32 = u32::MAX;

impl Gap {
    /// The last missing sequence number.
    pub(crate) fn last_seq(&self) -> u64 {
        self.first_seq.saturating_add(self.missing.max(1) - 1)
    }
}
