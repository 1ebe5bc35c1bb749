//! Chooses the ledger's storage at startup: memory (the default, said so in
//! one log line) or, with `--data-dir`, the journal of that directory, locked
//! against a second server and recovered before the first call is taken.
//! Recovery that finds damaged acknowledged data fails startup, naming the
//! file and byte offset; so does a journal that differs from what the last
//! clean shutdown recorded. Dropping the `Durable` (the server's stop) closes
//! the journal cleanly and records what it left.

use std::path::Path;
use std::sync::Arc;

use tracing::info;

use crate::backend::ledger::storage::{DataDir, Journal, StorageHandle};
use crate::backend::ledger::{spawn_snapshotter, Ledger, LedgerConfig};

/// The ledger and, when durable, its journal (for the closing report).
#[derive(Debug)]
pub struct Durable {
    pub ledger: Arc<Ledger>,
    journal: Option<Arc<Journal>>,
}

/// Builds the ledger `config` and `data_dir` describe; the journal rolls
/// over (a snapshot, a new generation) past `rollover_bytes`.
pub fn open(config: &LedgerConfig, data_dir: Option<&Path>, rollover_bytes: u64) -> Result<Durable, String> {
    let Some(path) = data_dir else {
        info!("ledger in memory, not durable: a restart loses every account (--data-dir PATH keeps them)");
        let ledger = Arc::new(Ledger::new(config.clone()));
        return Ok(Durable {
            ledger,
            journal: None,
        });
    };
    let dir = DataDir::lock(path)?;
    let recovered = dir.recover()?;
    let journal = Arc::new(Journal::open(dir, &recovered, rollover_bytes)?);
    let mut config = config.clone();
    config.storage = StorageHandle(Arc::clone(&journal) as _);
    let ledger = Ledger::recover(config, &recovered.snapshot, &recovered.journal.records)
        .map_err(|e| format!("{}: recovery refused: {e}", path.display()))?;
    info!(
        data_dir = %path.display(),
        generation = recovered.generation,
        snapshot_records = recovered.snapshot.len(),
        journal_records = recovered.journal.records.len(),
        accounts = ledger.account_count(),
        total_balance = %ledger.total_balance(),
        "ledger durable: recovered; every op is answered after its record is fdatasync'ed"
    );
    let ledger = Arc::new(ledger);
    spawn_snapshotter(&ledger);
    Ok(Durable {
        ledger,
        journal: Some(journal),
    })
}

impl Durable {
    /// Journal syncs and records written since start, if durable (for `/metrics`).
    pub fn journal_stats(&self) -> Option<JournalStats> {
        let journal = Arc::clone(self.journal.as_ref()?);
        Some(Arc::new(move || journal.stats()))
    }
}

/// Reads (syncs, records) of the journal.
pub type JournalStats = Arc<dyn Fn() -> (u64, u64) + Send + Sync>;

impl Drop for Durable {
    /// The server's stop: the journal is closed cleanly (what is pending is
    /// synced, then the `CLEAN` marker records what the journal holds).
    fn drop(&mut self) {
        if let Some(journal) = &self.journal {
            journal.close();
            let (syncs, records) = journal.stats();
            let per_sync = records as f64 / syncs.max(1) as f64;
            info!(
                syncs,
                records,
                records_per_sync = format!("{per_sync:.1}"),
                "journal: syncs since start"
            );
        }
    }
}
