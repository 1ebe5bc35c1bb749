//! Layer 2: the verdict and its words. The kinds of violation, the sink
//! every check reports into and the report it becomes (`verdict`); the
//! plain-English pieces that name accounts, ops and replays in a
//! violation's detail (`describe`); and the records the checks cannot use,
//! with their kind and words (`problem`). Findings flow here from every
//! layer above, each through the sink it is handed.
//!
//! May import: `history` only. A type that a detail names (a replay's
//! anchor, a record's problem) lives here, beside its words, so that no
//! check is imported back.

pub(crate) mod describe;
pub(crate) mod problem;
mod verdict;

pub(crate) use verdict::Sink;
pub use verdict::{CheckStats, Checked, Report, Verdict, Violation, ViolationKind, MAX_REPORTED_VIOLATIONS};
