//! Recovery after a crash: a child process writes N records (in groups of
//! [`POPULATE_GROUP`], durably) and exits without closing anything, as a
//! killed server would; then the parent, on a copy of what it left whose
//! pages were dropped from the cache, times opening the engine and loading
//! the whole ledger into memory, and checks that every record came back.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cell::fresh_dir;
use crate::engine::{dir_bytes, evict, Committer, Serial};
use crate::kind::Kind;
use crate::workload::{record, ACCOUNTS};

/// Records per durable group while populating (one transaction, one sync).
pub const POPULATE_GROUP: u64 = 10_000;
/// The file SQLite rebuilds on open: not copied (a crash leaves it stale).
const SKIP_SUFFIX: &str = "-shm";

/// What recovering one engine measured.
#[derive(Debug, Clone)]
pub struct Recovery {
    pub kind: Kind,
    pub records: u64,
    pub bytes: u64,
    pub populate: Duration,
    /// Per rep: until queries could be answered from the files (not for the journal).
    pub open: Vec<Option<Duration>>,
    /// Per rep: until the whole ledger was in memory.
    pub total: Vec<Duration>,
}

/// The child's side: writes `n` records into `dir`, then exits at once.
pub fn populate(kind: Kind, dir: &Path, n: u64) -> Result<(), String> {
    let committer = Serial::new(kind.open(dir)?);
    let mut next = 0;
    while next < n {
        let end = (next + POPULATE_GROUP).min(n);
        let recs: Vec<_> = (next..end).map(|i| record(0, i)).collect();
        committer.commit(&recs)?;
        next = end;
    }
    // A crash, not a shutdown: no destructor runs, nothing is closed.
    std::process::exit(0)
}

/// Populates `n` records of `kind` in a child, then recovers copies `reps` times.
pub fn measure(kind: Kind, n: u64, base: &Path, reps: usize) -> Result<Recovery, String> {
    let crashed = base.join(format!("{}-crashed", kind.name()));
    fresh_dir(&crashed)?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let status = Command::new(exe)
        .args([
            "populate",
            kind.name(),
            &crashed.to_string_lossy(),
            &n.to_string(),
        ])
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("populating {} failed: {status}", kind.name()));
    }
    let populate = started.elapsed();
    let mut out = Recovery {
        kind,
        records: n,
        bytes: dir_bytes(&crashed),
        populate,
        open: Vec::new(),
        total: Vec::new(),
    };
    let copy = base.join(format!("{}-recovering", kind.name()));
    for _ in 0..reps {
        copy_dir(&crashed, &copy)?;
        evict(&copy)?;
        let (open, total, ledger) = kind.recover(&copy)?;
        let accounts = ACCOUNTS.min(n) as usize;
        if ledger.ids.len() as u64 != n || ledger.accounts.len() != accounts {
            return Err(format!(
                "{}: recovered {} ids, {} accounts",
                kind.name(),
                ledger.ids.len(),
                ledger.accounts.len()
            ));
        }
        out.open.push(open);
        out.total.push(total);
    }
    fresh_dir(&copy)?;
    Ok(out)
}

/// Copies every file of `from` (but SQLite's shared-memory index) into a fresh `to`.
fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    fresh_dir(to)?;
    for entry in std::fs::read_dir(from).map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name();
        if name.to_string_lossy().ends_with(SKIP_SUFFIX) {
            continue;
        }
        std::fs::copy(entry.path(), to.join(&name)).map_err(|e| e.to_string())?;
    }
    Ok(())
}
