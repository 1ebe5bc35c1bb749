//! Planted sync bugs, for `.ci/powerloss.sh` to show that a power-loss test
//! can fail: `BANK_TEST_SKIP_SYNC=answer|dir|snapshot` makes the journal skip
//! one kind of sync. Honoured only in debug builds (`cfg(debug_assertions)`):
//! a release build never reads the variable, so it is no production flag.
//!
//! - `answer`: the `fdatasync` of a batch before its ops are answered;
//! - `dir`: the directory `fsync`s of a generation change (after creating
//!   `journal.G+1`, after renaming `snapshot.G+1` into place, after deleting
//!   the old generation: any one of them alone would make the others durable);
//! - `snapshot`: the `fsync` of a snapshot's temporary file before its rename.

/// A sync that may be planted as skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    Answer,
    Dir,
    Snapshot,
}

/// The environment variable that plants a skipped sync (debug builds only).
pub const SKIP_SYNC_ENV: &str = "BANK_TEST_SKIP_SYNC";

/// Whether the sync `which` is to be skipped: never in a release build.
#[cfg(debug_assertions)]
pub fn skip(which: Skip) -> bool {
    planted() == Some(which)
}

#[cfg(not(debug_assertions))]
pub fn skip(_which: Skip) -> bool {
    false
}

/// Reads the variable now, so that a planted bug is logged at startup.
pub fn announce() {
    #[cfg(debug_assertions)]
    planted();
}

/// The planted skip, read once (and said loudly once).
#[cfg(debug_assertions)]
fn planted() -> Option<Skip> {
    static PLANTED: std::sync::OnceLock<Option<Skip>> = std::sync::OnceLock::new();
    *PLANTED.get_or_init(|| {
        let value = std::env::var(SKIP_SYNC_ENV).ok()?;
        let skip = parse(&value);
        match skip {
            Some(s) => tracing::warn!("{SKIP_SYNC_ENV}={value}: PLANTED BUG, the journal skips a sync ({s:?}); acknowledged ops may be lost on power loss"),
            None => tracing::error!("{SKIP_SYNC_ENV}={value:?} is not answer, dir or snapshot: ignored"),
        }
        skip
    })
}

/// `answer`, `dir` or `snapshot`.
pub fn parse(value: &str) -> Option<Skip> {
    match value {
        "answer" => Some(Skip::Answer),
        "dir" => Some(Skip::Dir),
        "snapshot" => Some(Skip::Snapshot),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_names_parse_and_nothing_else() {
        assert_eq!(parse("answer"), Some(Skip::Answer));
        assert_eq!(parse("dir"), Some(Skip::Dir));
        assert_eq!(parse("snapshot"), Some(Skip::Snapshot));
        assert_eq!(parse("all"), None);
    }
}
