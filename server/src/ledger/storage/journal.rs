//! The durable backend: an append-only journal of checksummed records with
//! group commit. A caller appends its records' frames to the pending batch
//! and waits; whoever finds no flush running becomes the flusher: it takes
//! the whole pending batch, writes it with one `write` and one `fdatasync`,
//! and wakes every caller whose records were in it. So ops of many accounts
//! (each holding its own account lock meanwhile) share one sync.
//!
//! A failed write or sync fails its batch (its callers hear UNAVAILABLE,
//! and the ledger applies none of it) and breaks the journal: every later
//! commit fails at once. A failed fsync is never retried and trusted, since
//! the kernel may have dropped the dirty pages: at most every
//! [`REPAIR_INTERVAL`] a commit tries a repair, which reopens the file,
//! truncates it to the last length known synced, and syncs that; only then
//! are writes taken again. The same cut is tried at once after the failure,
//! so that the failed batch (whose callers heard UNAVAILABLE) cannot come
//! back at the next start; if even that cut fails and the server restarts
//! before a repair, the batch may be found applied (GetOperation tells).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::codec::encode;
use super::dir::{DataDir, Recovered};
use super::{Record, Storage, StorageError};

/// How often a broken journal may try to repair itself.
pub const REPAIR_INTERVAL: Duration = Duration::from_millis(500);
/// The journal grows to at least this before a snapshot replaces it.
pub const SNAPSHOT_AFTER_BYTES: u64 = 64 * 1024 * 1024;

/// One flush's callers share this; it is set once the flush is over.
#[derive(Debug, Default)]
struct Batch {
    result: OnceLock<Result<(), StorageError>>,
    /// Its callers wait here (with the journal's mutex): woken all at once
    /// when the batch is flushed, or one of them to flush it.
    wake: Condvar,
}

/// Everything behind the journal's mutex.
#[derive(Debug)]
struct Inner {
    /// Frames waiting for the next flush, and the batch their callers wait on.
    pending: Vec<u8>,
    pending_records: usize,
    batch: Arc<Batch>,
    flushing: bool,
    /// The open journal file; `None` while broken or while a flush holds it.
    file: Option<File>,
    /// Bytes of the journal known synced.
    synced_len: u64,
    generation: u64,
    /// Why writes are refused, while they are.
    broken: Option<String>,
    last_repair: Option<Instant>,
    snapshot_bytes: u64,
}

/// The `--data-dir` storage (see the module doc).
#[derive(Debug)]
pub struct Journal {
    dir: DataDir,
    inner: Mutex<Inner>,
    snapshot_after: u64,
    syncs: AtomicU64,
    records: AtomicU64,
    /// Test hooks: fail this many syncs, and fail repairs while set.
    fail_syncs: AtomicUsize,
    fail_repairs: AtomicBool,
}

impl Journal {
    /// The journal of a recovered data dir, appending after its valid records.
    pub fn open(dir: DataDir, recovered: &Recovered, snapshot_after: u64) -> Result<Journal, String> {
        let path = dir.file(false, recovered.generation);
        let file = append(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let inner = Inner {
            pending: Vec::new(),
            pending_records: 0,
            batch: Arc::default(),
            flushing: false,
            file: Some(file),
            synced_len: recovered.journal.valid_len,
            generation: recovered.generation,
            broken: None,
            last_repair: None,
            snapshot_bytes: recovered.snapshot_bytes,
        };
        Ok(Journal {
            dir,
            inner: Mutex::new(inner),
            snapshot_after,
            syncs: AtomicU64::new(0),
            records: AtomicU64::new(0),
            fail_syncs: AtomicUsize::new(0),
            fail_repairs: AtomicBool::new(false),
        })
    }

    /// Syncs done and records written since start.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.syncs.load(Ordering::Relaxed),
            self.records.load(Ordering::Relaxed),
        )
    }

    /// Test hook: the next `n` syncs fail (as a full disk or an EIO would).
    pub fn inject_sync_failures(&self, n: usize) {
        self.fail_syncs.store(n, Ordering::SeqCst);
    }

    /// Test hook: repairs fail while `fail` is set (the disk stays bad).
    pub fn fail_repairs(&self, fail: bool) {
        self.fail_repairs.store(fail, Ordering::SeqCst);
    }

    /// Whether writes are refused now.
    pub fn is_broken(&self) -> bool {
        self.inner.lock().broken.is_some()
    }

    /// Refuses at once while broken, unless a repair (tried at most every
    /// [`REPAIR_INTERVAL`]) brings the journal back.
    fn usable(&self, g: &mut MutexGuard<'_, Inner>) -> Result<(), StorageError> {
        let Some(why) = g.broken.clone() else {
            return Ok(());
        };
        let due = g.last_repair.is_none_or(|at| at.elapsed() >= REPAIR_INTERVAL);
        if g.flushing || !due {
            return Err(unavailable(&why));
        }
        g.last_repair = Some(Instant::now());
        match self.repair(g.generation, g.synced_len) {
            Ok(file) => {
                tracing::warn!(
                    "journal: repaired (cut back to {} synced bytes); taking writes again",
                    g.synced_len
                );
                g.file = Some(file);
                g.broken = None;
                Ok(())
            }
            Err(e) => Err(unavailable(&format!("{why}; repair failed: {e}"))),
        }
    }

    /// Reopens the journal, cuts it to `len` (what was synced) and syncs that.
    fn repair(&self, generation: u64, len: u64) -> std::io::Result<File> {
        if self.fail_repairs.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("injected repair failure"));
        }
        let mut file = OpenOptions::new()
            .write(true)
            .open(self.dir.file(false, generation))?;
        file.set_len(len)?;
        file.sync_all()?;
        file.seek(SeekFrom::End(0))?;
        Ok(file)
    }

    /// Writes the pending batch with one write and one sync, then wakes its
    /// callers. Called with the lock held and no flush running; drops the
    /// lock for the I/O.
    fn flush(&self, g: &mut MutexGuard<'_, Inner>) {
        let bytes = std::mem::take(&mut g.pending);
        let records = std::mem::take(&mut g.pending_records);
        let batch = std::mem::take(&mut g.batch);
        let result = match (g.broken.clone(), g.file.take()) {
            (None, Some(mut file)) => {
                g.flushing = true;
                let written = MutexGuard::unlocked(g, || self.write_and_sync(&mut file, &bytes));
                g.flushing = false;
                self.settle(g, file, written, bytes.len() as u64, records)
            }
            (why, _) => Err(unavailable(why.as_deref().unwrap_or("the journal is not open"))),
        };
        let _ = batch.result.set(result);
        batch.wake.notify_all();
        // One caller of the batch that gathered meanwhile flushes it next.
        // (A wake per batch, not per waiter: that is what 64 threads cost.)
        g.batch.wake.notify_one();
    }

    fn write_and_sync(&self, file: &mut File, bytes: &[u8]) -> std::io::Result<()> {
        file.write_all(bytes)?;
        let injected = self
            .fail_syncs
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if injected {
            return Err(std::io::Error::other("injected fdatasync failure"));
        }
        file.sync_data()
    }

    /// Books a flush's outcome: the new synced length, or a broken journal.
    fn settle(
        &self,
        g: &mut MutexGuard<'_, Inner>,
        file: File,
        written: std::io::Result<()>,
        len: u64,
        records: usize,
    ) -> Result<(), StorageError> {
        match written {
            Ok(()) => {
                g.synced_len += len;
                g.file = Some(file);
                self.syncs.fetch_add(1, Ordering::Relaxed);
                self.records.fetch_add(records as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                let why = format!("journal write or sync failed: {e}");
                tracing::error!("{why}; refusing writes until a repair succeeds");
                // The file is dropped: what it holds past synced_len is not
                // trusted. Cut it off now (through a new descriptor), so an
                // unacknowledged batch cannot come back at the next start.
                drop(file);
                if let Err(e) = self.repair(g.generation, g.synced_len) {
                    tracing::error!("journal: cannot cut back the failed batch yet ({e}): until a repair does, a restart may find it applied");
                }
                g.last_repair = Some(Instant::now());
                g.broken = Some(why.clone());
                Err(unavailable(&why))
            }
        }
    }

    fn start_generation(&self, g: &mut MutexGuard<'_, Inner>, snapshot: &[u8]) -> std::io::Result<()> {
        let next = g.generation + 1;
        let journal = self.dir.file(false, next);
        let file = File::create(&journal)?;
        file.sync_all()?;
        self.dir.sync()?;
        let written = self.dir.write_snapshot(next, snapshot);
        if written.is_err() && !self.dir.file(true, next).exists() {
            // Not renamed into place: the old generation stays in force.
            let _ = std::fs::remove_file(&journal);
            return written;
        }
        // Renamed: the new generation may be the one in force, so from here
        // on everything goes to its journal, never to the old one.
        let old = g.generation;
        g.generation = next;
        g.synced_len = 0;
        g.snapshot_bytes = snapshot.len() as u64;
        if let Err(e) = written {
            // The directory's sync failed: write nothing until a repair.
            g.broken = Some(format!("a snapshot's directory sync failed: {e}"));
            return Err(e);
        }
        g.file = Some(file);
        let _ = std::fs::remove_file(self.dir.file(false, old));
        let _ = std::fs::remove_file(self.dir.file(true, old));
        let _ = self.dir.sync();
        Ok(())
    }
}

impl Storage for Journal {
    fn commit(&self, records: &[Record]) -> Result<(), StorageError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut frames = Vec::with_capacity(records.len() * 96);
        records.iter().for_each(|r| encode(r, &mut frames));
        let mut g = self.inner.lock();
        self.usable(&mut g)?;
        g.pending.extend_from_slice(&frames);
        g.pending_records += records.len();
        let batch = Arc::clone(&g.batch);
        loop {
            if let Some(result) = batch.result.get() {
                return result.clone();
            }
            if g.flushing {
                batch.wake.wait(&mut g);
            } else {
                self.flush(&mut g);
            }
        }
    }

    fn is_durable(&self) -> bool {
        true
    }

    fn wants_snapshot(&self) -> bool {
        let g = self.inner.lock();
        g.broken.is_none() && g.synced_len > self.snapshot_after.max(g.snapshot_bytes)
    }

    fn snapshot(&self, snapshot: &[Record]) -> Result<(), StorageError> {
        let mut bytes = Vec::new();
        snapshot.iter().for_each(|r| encode(r, &mut bytes));
        let mut g = self.inner.lock();
        if g.broken.is_some() || g.flushing || !g.pending.is_empty() {
            return Err(StorageError(
                "the journal is busy or broken; no snapshot now".into(),
            ));
        }
        self.start_generation(&mut g, &bytes).map_err(|e| {
            StorageError(format!(
                "snapshot failed (the old generation stays in force): {e}"
            ))
        })
    }
}

fn append(path: &Path) -> std::io::Result<File> {
    let mut file = OpenOptions::new().write(true).open(path)?;
    file.seek(SeekFrom::End(0))?;
    Ok(file)
}

fn unavailable(why: &str) -> StorageError {
    StorageError(format!("storage unavailable: {why}"))
}
