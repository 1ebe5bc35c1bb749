//! Each account replayed, and the ops of unknown outcome placed exactly:
//! the replay that finds the sequence gaps (`walk`, `finals`), the ops that
//! may fill them (`cands`), the search and its wording (`search`, `place`,
//! `ambiguous`), and conservation over what it placed (`conservation`).

pub(crate) mod ambiguous;
pub(crate) mod cands;
pub(crate) mod conservation;
pub(crate) mod finals;
pub(crate) mod gap;
pub(crate) mod place;
pub(crate) mod search;
pub(crate) mod walk;
