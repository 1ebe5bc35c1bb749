//! The order of ops and reads: each account's views sorted by sequence
//! (`index`), real time on one account (`realtime`, `timeline`), reads as
//! nodes of the one order (`readnodes`), the one global order of all ops and
//! reads (`global`), and the reads judged against it (`reads`).

pub(crate) mod global;
pub(crate) mod index;
pub(crate) mod readnodes;
pub(crate) mod reads;
pub(crate) mod realtime;
pub(crate) mod timeline;
