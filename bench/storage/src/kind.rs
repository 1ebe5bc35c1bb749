//! The three engines by name: how to open one for writing, and how to
//! recover one (open it and load the whole ledger into memory, as the
//! server's startup does).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::engine::Engine;
use crate::workload::Ledger;
use crate::{journal, redb_engine, sqlite};

/// One of the compared engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Journal,
    /// The journal, its file zeroed ahead of use (not what the server does).
    JournalPrezero,
    Sqlite,
    Redb,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Journal, Kind::JournalPrezero, Kind::Sqlite, Kind::Redb];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Journal => "journal",
            Kind::JournalPrezero => "journal-prezero",
            Kind::Sqlite => "sqlite",
            Kind::Redb => "redb",
        }
    }

    pub fn parse(name: &str) -> Result<Kind, String> {
        Kind::ALL.into_iter().find(|k| k.name() == name).ok_or(format!(
            "unknown engine {name:?} (journal, journal-prezero, sqlite, redb)"
        ))
    }

    /// Opens (creating) the engine's files in `dir`.
    pub fn open(self, dir: &Path) -> Result<Box<dyn Engine>, String> {
        Ok(match self {
            Kind::Journal => Box::new(journal::Journal::open(dir)?),
            Kind::JournalPrezero => Box::new(journal::Journal::open_prezeroed(dir)?),
            Kind::Sqlite => Box::new(sqlite::Sqlite::open(dir)?),
            Kind::Redb => Box::new(redb_engine::Redb::open(dir)?),
        })
    }

    /// Recovers `dir`: the time until the engine could answer queries from
    /// its files (`None` for the journal: it must be replayed into memory),
    /// the time until the whole ledger is in memory, and the ledger.
    pub fn recover(self, dir: &Path) -> Result<(Option<Duration>, Duration, Ledger), String> {
        let started = Instant::now();
        let (open, ledger) = match self {
            Kind::Journal | Kind::JournalPrezero => (None, journal::recover(dir)?),
            Kind::Sqlite => sqlite::recover(dir).map(|(o, l)| (Some(o), l))?,
            Kind::Redb => redb_engine::recover(dir).map(|(o, l)| (Some(o), l))?,
        };
        Ok((open, started.elapsed(), ledger))
    }
}
