//! Engine 3: redb, one durable write transaction per group (redb's default
//! `Durability::Immediate`: `commit` returns once the file is fsynced), with
//! the same two tables as the SQLite engine: accounts (balance, sequence) and
//! request ids (the stored result). redb serializes write transactions itself.

use std::path::Path;
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::engine::Engine;
use crate::workload::{Ledger, Rec};

/// The database's file name.
const FILE: &str = "ledger.redb";

/// account id -> (balance, sequence).
const ACCOUNTS: TableDefinition<&str, (u64, u64)> = TableDefinition::new("accounts");
/// request id -> (account, kind, amount, outcome, balance, sequence).
const IDS: TableDefinition<&str, (&str, u8, u64, u8, u64, u64)> = TableDefinition::new("request_ids");

/// A redb ledger database.
pub struct Redb {
    db: Database,
}

impl Redb {
    /// Opens (creating if missing) the database in `dir`. After a crash,
    /// this is where redb repairs the file.
    pub fn open(dir: &Path) -> Result<Redb, String> {
        let db = Database::create(dir.join(FILE)).map_err(|e| e.to_string())?;
        let tx = db.begin_write().map_err(|e| e.to_string())?;
        tx.open_table(ACCOUNTS).map_err(|e| e.to_string())?;
        tx.open_table(IDS).map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
        Ok(Redb { db })
    }
}

impl Engine for Redb {
    fn write_group(&self, recs: &[Rec]) -> Result<(), String> {
        let tx = self.db.begin_write().map_err(|e| e.to_string())?;
        {
            let mut accounts = tx.open_table(ACCOUNTS).map_err(|e| e.to_string())?;
            let mut ids = tx.open_table(IDS).map_err(|e| e.to_string())?;
            for r in recs {
                accounts
                    .insert(r.account.as_str(), (r.balance, r.sequence))
                    .map_err(|e| e.to_string())?;
                let stored = (
                    r.account.as_str(),
                    r.kind,
                    r.amount,
                    r.outcome,
                    r.balance,
                    r.sequence,
                );
                ids.insert(r.request_id.as_str(), stored)
                    .map_err(|e| e.to_string())?;
            }
        }
        tx.commit().map_err(|e| e.to_string())
    }
}

/// Recovery: opens the database (repairing it after a crash) and loads both
/// tables into memory. Returns the time to open and the ledger.
pub fn recover(dir: &Path) -> Result<(Duration, Ledger), String> {
    let started = Instant::now();
    let db = Redb::open(dir)?.db;
    let opened = started.elapsed();
    let tx = db.begin_read().map_err(|e| e.to_string())?;
    let mut ledger = Ledger::default();
    let ids = tx.open_table(IDS).map_err(|e| e.to_string())?;
    for entry in ids.iter().map_err(|e| e.to_string())? {
        let (k, v) = entry.map_err(|e| e.to_string())?;
        let (account, kind, amount, outcome, balance, sequence) = v.value();
        ledger.apply(Rec {
            account: account.to_owned(),
            request_id: k.value().to_owned(),
            kind,
            amount,
            outcome,
            balance,
            sequence,
        });
    }
    let accounts = tx.open_table(ACCOUNTS).map_err(|e| e.to_string())?;
    for entry in accounts.iter().map_err(|e| e.to_string())? {
        let (k, v) = entry.map_err(|e| e.to_string())?;
        ledger.accounts.insert(k.value().to_owned(), v.value());
    }
    Ok((opened, ledger))
}
