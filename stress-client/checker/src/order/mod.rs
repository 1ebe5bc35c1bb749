//! Layer 3: the order of ops and reads. Each account's views sorted by
//! sequence (`index`, which also takes the placements of the exact search
//! as `Placed` for its second build), real time on one account (`realtime`,
//! `timeline`) and within one process of a merged history (`own`), reads
//! as nodes of the one order (`readnodes`), the one global order of all ops
//! and reads (`global`), and the reads judged against each account's order
//! (`reads`).
//!
//! May import: `history`, `report`. Never `placement`: the search is told
//! where the order rules a spot out by what `global` returns.

pub(crate) mod global;
pub(crate) mod index;
pub(crate) mod own;
pub(crate) mod readnodes;
pub(crate) mod reads;
pub(crate) mod realtime;
pub(crate) mod timeline;
