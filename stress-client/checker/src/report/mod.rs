//! The verdict and its words: the kinds of violation, the sink every check
//! reports into and the report it becomes (`verdict`), and the plain-English
//! pieces that name accounts, ops and replays in a violation's detail
//! (`describe`), and the records the checks cannot use (`problem`).

pub(crate) mod describe;
pub(crate) mod problem;
mod verdict;

pub(crate) use verdict::Sink;
pub use verdict::{CheckStats, Checked, Report, Verdict, Violation, ViolationKind, MAX_REPORTED_VIOLATIONS};
