//! The verdict and its words: the kinds of violation, the sink every check
//! reports into and the report it becomes (`verdict`), and the plain-English
//! pieces that name accounts, ops and replays in a violation's detail
//! (`describe`).

pub(crate) mod describe;
mod verdict;

pub(crate) use verdict::Sink;
pub use verdict::{CheckStats, Checked, Report, Verdict, Violation, ViolationKind, MAX_REPORTED_VIOLATIONS};
