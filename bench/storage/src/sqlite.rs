//! Engine 2: SQLite (`rusqlite`, bundled) in WAL mode with
//! `synchronous=FULL`: a commit returns once the WAL is fsynced. One
//! transaction per group; per record an upsert of the account's balance and
//! sequence and an insert of the request id's stored result, as a ledger
//! would. One connection behind a mutex: SQLite has one writer at a time.
//! Otherwise SQLite's defaults (4 KiB pages, auto-checkpoint at 1000 pages).

use std::path::Path;

use parking_lot::Mutex;
use rusqlite::{params, Connection};

use crate::engine::Engine;
use crate::workload::{Ledger, Rec};

/// SQLite's page cache, in KiB (negative `cache_size` means KiB): 64 MiB,
/// as a server would set it, instead of the 2 MiB default.
const CACHE_KIB: i64 = 64 * 1024;

/// The database's file name (SQLite adds `-wal` and `-shm` beside it).
const FILE: &str = "ledger.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY, balance INTEGER NOT NULL, sequence INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS request_ids (
    id TEXT PRIMARY KEY, account TEXT NOT NULL, kind INTEGER NOT NULL, amount INTEGER NOT NULL,
    outcome INTEGER NOT NULL, balance INTEGER NOT NULL, sequence INTEGER NOT NULL
) WITHOUT ROWID;";

const UPSERT_ACCOUNT: &str = "INSERT INTO accounts (id, balance, sequence) VALUES (?1, ?2, ?3)
    ON CONFLICT (id) DO UPDATE SET balance = excluded.balance, sequence = excluded.sequence";

const INSERT_ID: &str = "INSERT INTO request_ids
    (id, account, kind, amount, outcome, balance, sequence) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// A SQLite ledger database.
pub struct Sqlite {
    conn: Mutex<Connection>,
}

impl Sqlite {
    /// Opens (creating if missing) the database in `dir`: WAL, synchronous=FULL.
    pub fn open(dir: &Path) -> Result<Sqlite, String> {
        let conn = Connection::open(dir.join(FILE)).map_err(|e| e.to_string())?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| e.to_string())?;
        if mode != "wal" {
            return Err(format!("journal_mode is {mode}, not wal"));
        }
        conn.execute_batch(&format!(
            "PRAGMA synchronous = FULL; PRAGMA cache_size = -{CACHE_KIB};"
        ))
        .and_then(|()| conn.execute_batch(SCHEMA))
        .map_err(|e| e.to_string())?;
        Ok(Sqlite {
            conn: Mutex::new(conn),
        })
    }
}

impl Engine for Sqlite {
    fn write_group(&self, recs: &[Rec]) -> Result<(), String> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        {
            let mut upsert = tx.prepare_cached(UPSERT_ACCOUNT).map_err(|e| e.to_string())?;
            let mut insert = tx.prepare_cached(INSERT_ID).map_err(|e| e.to_string())?;
            for r in recs {
                let (bal, seq, amt) = (r.balance as i64, r.sequence as i64, r.amount as i64);
                upsert
                    .execute(params![r.account, bal, seq])
                    .map_err(|e| e.to_string())?;
                insert
                    .execute(params![r.request_id, r.account, r.kind, amt, r.outcome, bal, seq])
                    .map_err(|e| e.to_string())?;
            }
        }
        tx.commit().map_err(|e| e.to_string())
    }
}

/// Recovery: opens the database (SQLite replays its WAL) and loads both
/// tables into memory. Returns the time to open and the ledger.
pub fn recover(dir: &Path) -> Result<(std::time::Duration, Ledger), String> {
    let started = std::time::Instant::now();
    let db = Sqlite::open(dir)?;
    let conn = db.conn.lock();
    // The first read rebuilds the WAL index: part of opening.
    conn.query_row("SELECT count(*) FROM accounts", [], |r| r.get::<_, i64>(0))
        .map_err(|e| e.to_string())?;
    let opened = started.elapsed();
    let mut ledger = Ledger::default();
    load_ids(&conn, &mut ledger).map_err(|e| e.to_string())?;
    load_accounts(&conn, &mut ledger).map_err(|e| e.to_string())?;
    Ok((opened, ledger))
}

fn load_ids(conn: &Connection, ledger: &mut Ledger) -> rusqlite::Result<()> {
    let mut stmt =
        conn.prepare("SELECT id, account, kind, amount, outcome, balance, sequence FROM request_ids")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        ledger.apply(Rec {
            request_id: row.get(0)?,
            account: row.get(1)?,
            kind: row.get(2)?,
            amount: row.get::<_, i64>(3)? as u64,
            outcome: row.get(4)?,
            balance: row.get::<_, i64>(5)? as u64,
            sequence: row.get::<_, i64>(6)? as u64,
        });
    }
    Ok(())
}

fn load_accounts(conn: &Connection, ledger: &mut Ledger) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("SELECT id, balance, sequence FROM accounts")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let (bal, seq) = (row.get::<_, i64>(1)? as u64, row.get::<_, i64>(2)? as u64);
        ledger.accounts.insert(row.get(0)?, (bal, seq));
    }
    Ok(())
}
