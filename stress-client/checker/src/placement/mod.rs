//! Layer 4: each account replayed, and the ops of unknown outcome placed
//! exactly. The replay that finds the sequence gaps (`walk`, `finals`), the
//! gaps it hands on (`gap`), the ops that may fill them (`cands`), a merged
//! history's bounds on each process's own clock (`own`), the search and the
//! words for what it cannot fill (`search`, `place`, `ambiguous`), and
//! conservation over what it placed (`conservation`). Within it: `finals`
//! -> `walk` -> `gap`; `place` -> `search` -> `cands` -> `own` -> `gap`;
//! `place` -> `ambiguous` -> `gap`.
//!
//! May import: `history`, `report`, `order`. Only `lib.rs` (the pipeline:
//! answers, index, replay, placement in the global order, reads,
//! conservation) imports it.

pub(crate) mod ambiguous;
pub(crate) mod cands;
pub(crate) mod conservation;
pub(crate) mod finals;
pub(crate) mod gap;
pub(crate) mod own;
pub(crate) mod place;
pub(crate) mod search;
pub(crate) mod walk;
