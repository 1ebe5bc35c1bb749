//! History files (`--history`, `check`, `setup`): the checker's input on disk,
//! so a run can be judged later, by another process, or merged with the
//! histories of other processes on the same accounts. `schema` is the
//! format (docs/history.md), `names` its words, `write` and `read` the two
//! directions (`hot`: the reader's fast path for the lines there are millions of).

pub mod hot;
pub mod merge;
pub mod names;
pub mod read;
pub mod schema;
pub mod setup;
pub mod split;
pub mod write;

pub use read::{read, Parsed};
pub use schema::Anchor;
pub use write::{write, Meta};
