//! The durable backend: an append-only journal of checksummed records with
//! group commit. A caller appends its records' frames to the pending batch
//! and gets the batch's [`Ticket`]; the journal's flusher thread takes the
//! whole pending batch whenever it is free, writes it with one `write` and
//! one `fdatasync`, and completes the ticket. So ops of many accounts share
//! one sync, and no account lock is held while it runs: the ledger applies
//! an op to memory at once, answers it only when its ticket says synced,
//! and rolls memory back if it says failed (see `ledger::account`).
//!
//! A failed write or sync fails its batch and every batch appended before
//! the failure (their callers hear UNAVAILABLE, and the ledger rolls them
//! back) and breaks the journal: every later append fails at once, and so
//! does one that depends on a failed ticket. A failed fsync is never retried and trusted, since
//! the kernel may have dropped the dirty pages: at most every
//! [`REPAIR_INTERVAL`] a commit tries a repair, which reopens the file,
//! truncates it to the last length known synced, and syncs that; only then
//! are writes taken again. The same cut is tried at once after the failure,
//! so that the failed batch (whose callers heard UNAVAILABLE) cannot come
//! back at the next start; if even that cut fails and the server restarts
//! before a repair, the batch may be found applied (GetOperation tells).
//!
//! After each sync the flusher checks that the data dir and the journal's
//! path still name the directory and file it holds (one `stat` each per
//! batch): if either was removed or replaced, the batch fails and the
//! journal is broken for good (no repair: writes answer UNAVAILABLE until a
//! restart; reads continue), with an error naming the path. A clean stop
//! ([`Shared::close`]) writes the `CLEAN` marker; the first write after a
//! start removes it (see `marker`).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::ops::Deref;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::codec::encode;
use super::dir::{DataDir, Recovered};
use super::ident::FileId;
use super::marker::{self, Clean};
use super::planted::{self, Skip};
use super::ticket::Ticket;
use super::{Record, Storage, StorageError};

/// How often a broken journal may try to repair itself.
pub const REPAIR_INTERVAL: Duration = Duration::from_millis(500);
/// The journal grows to at least this before a snapshot replaces it (the
/// default of `--journal-rollover-bytes`).
pub const SNAPSHOT_AFTER_BYTES: u64 = 64 * 1024 * 1024;
/// The least `--journal-rollover-bytes`: below it a busy server would spend
/// its time writing snapshots (each one takes every account's lock).
pub const ROLLOVER_MIN_BYTES: u64 = 64 * 1024;

/// Refuses a rollover size below [`ROLLOVER_MIN_BYTES`].
pub fn check_rollover_bytes(bytes: u64) -> Result<(), String> {
    if bytes < ROLLOVER_MIN_BYTES {
        return Err(format!(
            "--journal-rollover-bytes must be at least {ROLLOVER_MIN_BYTES} (64 KiB), got {bytes}: a smaller journal would be snapshotted almost every op"
        ));
    }
    Ok(())
}

/// How many times a snapshot waits for the pending batch to be flushed
/// before it gives up for now (ops keep coming; the next try is soon).
const SNAPSHOT_FLUSH_WAITS_MAX: usize = 16;

/// Everything behind the journal's mutex.
#[derive(Debug)]
struct Inner {
    /// Frames waiting for the next flush, and the batch their callers wait on.
    pending: Vec<u8>,
    pending_records: usize,
    /// The ticket of the pending batch.
    batch: Ticket,
    /// The ticket of the batch being written, while `flushing`.
    flight: Ticket,
    flushing: bool,
    /// Set when the journal is dropped: the flusher flushes what is pending and ends.
    stopping: bool,
    /// The open journal file; `None` while broken or while a flush holds it.
    file: Option<File>,
    /// Bytes of the journal known synced.
    synced_len: u64,
    generation: u64,
    /// Why writes are refused, while they are.
    broken: Option<String>,
    /// Set when the dir or journal was removed or replaced: no repair, ever.
    tampered: bool,
    /// Set by a clean stop: every later append is refused.
    closed: bool,
    /// The journal file's identity, to see its path removed or replaced.
    journal_id: FileId,
    /// Records in the journal known synced, and the CRC-32 of its synced bytes.
    synced_records: u64,
    synced_crc32: u32,
    /// A clean-shutdown marker is on disk: removed before the next write.
    clean_marker: bool,
    last_repair: Option<Instant>,
    snapshot_bytes: u64,
}

/// The `--data-dir` storage (see the module doc): the state it shares with
/// its flusher thread, which it stops and joins when dropped.
#[derive(Debug)]
pub struct Journal {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

/// What the journal and its flusher share.
#[derive(Debug)]
pub struct Shared {
    dir: DataDir,
    inner: Mutex<Inner>,
    /// The flusher sleeps here while nothing is pending.
    work: Condvar,
    snapshot_after: u64,
    syncs: AtomicU64,
    records: AtomicU64,
    /// Test hooks: fail this many syncs, and fail repairs while set.
    fail_syncs: AtomicUsize,
    fail_repairs: AtomicBool,
    /// Test hook: the flusher leaves pending batches alone while set.
    hold_flushes: AtomicBool,
}

impl Journal {
    /// The journal of a recovered data dir, appending after its valid
    /// records, with its flusher thread running.
    pub fn open(dir: DataDir, recovered: &Recovered, snapshot_after: u64) -> Result<Journal, String> {
        planted::announce();
        let shared = Arc::new(Shared::open(dir, recovered, snapshot_after)?);
        let flusher = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("journal-flusher".into())
                .spawn(move || shared.run_flusher())
                .map_err(|e| format!("cannot start the journal's flusher thread: {e}"))?
        };
        Ok(Journal {
            shared,
            flusher: Some(flusher),
        })
    }
}

impl Deref for Journal {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.shared
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.shared.inner.lock().stopping = true;
        self.shared.work.notify_all();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

impl Shared {
    fn open(dir: DataDir, recovered: &Recovered, snapshot_after: u64) -> Result<Shared, String> {
        let path = dir.file(false, recovered.generation);
        let file = append(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let journal_id = FileId::of_file(&file).map_err(|e| format!("{}: {e}", path.display()))?;
        let inner = Inner {
            pending: Vec::new(),
            pending_records: 0,
            batch: Ticket::default(),
            flight: Ticket::default(),
            flushing: false,
            stopping: false,
            file: Some(file),
            synced_len: recovered.journal.valid_len,
            generation: recovered.generation,
            broken: None,
            tampered: false,
            closed: false,
            journal_id,
            synced_records: recovered.journal.records.len() as u64,
            synced_crc32: recovered.journal_crc32,
            clean_marker: recovered.clean_marker,
            last_repair: None,
            snapshot_bytes: recovered.snapshot_bytes,
        };
        Ok(Shared {
            dir,
            inner: Mutex::new(inner),
            work: Condvar::new(),
            snapshot_after,
            syncs: AtomicU64::new(0),
            records: AtomicU64::new(0),
            fail_syncs: AtomicUsize::new(0),
            fail_repairs: AtomicBool::new(false),
            hold_flushes: AtomicBool::new(false),
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

    /// Test hook: while `hold` is set, appended records wait unflushed (as
    /// behind a slow disk), so a test sees ops applied but not yet synced.
    pub fn hold_flushes(&self, hold: bool) {
        let _g = self.inner.lock();
        self.hold_flushes.store(hold, Ordering::SeqCst);
        self.work.notify_all();
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
        if g.flushing || !due || g.tampered {
            return Err(unavailable(&why));
        }
        g.last_repair = Some(Instant::now());
        match self.repair(g.generation, g.synced_len, g.journal_id) {
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
    fn repair(&self, generation: u64, len: u64, expected: FileId) -> std::io::Result<File> {
        if self.fail_repairs.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("injected repair failure"));
        }
        let path = self.dir.file(false, generation);
        let mut file = OpenOptions::new().write(true).open(&path)?;
        // Never cut a file that is not the journal this server wrote.
        if id_of(&file)? != expected {
            return Err(std::io::Error::other(format!(
                "{} is no longer the journal this server wrote",
                path.display()
            )));
        }
        self.dir.check().map_err(std::io::Error::other)?;
        file.set_len(len)?;
        file.sync_all()?;
        file.seek(SeekFrom::End(0))?;
        Ok(file)
    }

    /// The flusher thread: flushes the pending batch whenever there is one,
    /// until the journal is dropped (then once more, so nothing is left).
    fn run_flusher(&self) {
        let mut g = self.inner.lock();
        loop {
            let held = self.hold_flushes.load(Ordering::SeqCst) && !g.stopping;
            if g.pending_records > 0 && !held {
                self.flush(&mut g);
            } else if g.stopping {
                return;
            } else {
                self.work.wait(&mut g);
            }
        }
    }

    /// Writes the pending batch with one write and one sync, then completes
    /// its ticket. Called by the flusher with the lock held; drops the lock
    /// for the I/O. A failure fails the batch appended meanwhile too: every
    /// ticket issued before a failure completes with it, so none is still
    /// pending once the journal is broken (and repaired).
    fn flush(&self, g: &mut MutexGuard<'_, Inner>) {
        let bytes = std::mem::take(&mut g.pending);
        let records = std::mem::take(&mut g.pending_records);
        let batch = std::mem::take(&mut g.batch);
        // A broken journal keeps its file only when tampered with: not to write.
        let file = if g.broken.is_none() { g.file.take() } else { None };
        let result = match file {
            Some(mut file) => {
                g.flushing = true;
                g.flight = batch.clone();
                let watch = Watch {
                    journal: self.dir.file(false, g.generation),
                    journal_id: g.journal_id,
                    clean_marker: g.clean_marker,
                };
                let written = MutexGuard::unlocked(g, || self.write_and_sync(&mut file, &bytes, &watch));
                g.flushing = false;
                self.settle(g, file, written, &bytes, records)
            }
            None => Err(unavailable(
                g.broken.as_deref().unwrap_or("the journal is not open"),
            )),
        };
        if result.is_err() {
            g.pending.clear();
            g.pending_records = 0;
            std::mem::take(&mut g.batch).complete(result.clone());
        }
        batch.complete(result);
    }

    /// Removes the clean-shutdown marker if it is still there, writes and
    /// syncs `bytes`, then checks that the dir and journal are still the
    /// ones at their paths: only then may the batch be acknowledged.
    fn write_and_sync(&self, file: &mut File, bytes: &[u8], watch: &Watch) -> Result<(), Failure> {
        if watch.clean_marker {
            marker::remove(self.dir.path()).map_err(Failure::Io)?;
        }
        file.write_all(bytes).map_err(Failure::Io)?;
        let injected = self
            .fail_syncs
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if injected {
            return Err(Failure::Io(std::io::Error::other("injected fdatasync failure")));
        }
        if !planted::skip(Skip::Answer) {
            file.sync_data().map_err(Failure::Io)?;
        }
        self.dir
            .check()
            .and_then(|()| watch.journal_id.check(&watch.journal, "journal"))
            .map_err(Failure::Tampered)
    }

    /// Books a flush's outcome: the new synced length, or a broken journal.
    fn settle(
        &self,
        g: &mut MutexGuard<'_, Inner>,
        file: File,
        written: Result<(), Failure>,
        bytes: &[u8],
        records: usize,
    ) -> Result<(), StorageError> {
        match written {
            Ok(()) => {
                g.synced_len += bytes.len() as u64;
                g.synced_records += records as u64;
                let mut crc = crc32fast::Hasher::new_with_initial(g.synced_crc32);
                crc.update(bytes);
                g.synced_crc32 = crc.finalize();
                g.clean_marker = false;
                g.file = Some(file);
                self.syncs.fetch_add(1, Ordering::Relaxed);
                self.records.fetch_add(records as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(Failure::Tampered(why)) => Err(self.tampered(g, file, why)),
            Err(Failure::Io(e)) => {
                let why = format!("journal write or sync failed: {e}");
                tracing::error!("{why}; refusing writes until a repair succeeds");
                // The file is dropped: what it holds past synced_len is not
                // trusted. Cut it off now (through a new descriptor), so an
                // unacknowledged batch cannot come back at the next start.
                drop(file);
                if let Err(e) = self.repair(g.generation, g.synced_len, g.journal_id) {
                    tracing::error!("journal: cannot cut back the failed batch yet ({e}): until a repair does, a restart may find it applied");
                }
                g.last_repair = Some(Instant::now());
                g.broken = Some(why.clone());
                Err(unavailable(&why))
            }
        }
    }

    /// Breaks the journal for good: the dir or journal was removed or
    /// replaced. The file stays open (its records can still be copied out).
    fn tampered(&self, g: &mut MutexGuard<'_, Inner>, file: File, why: String) -> StorageError {
        tracing::error!(
            data_dir = %self.dir.path().display(),
            "STORAGE TAMPERED: {why}; every write is refused (UNAVAILABLE) until a restart, reads continue. \
             What was acknowledged is in the journal this server still holds open{}: copy it out before stopping the server",
            open_file_hint(&file)
        );
        g.file = Some(file);
        g.tampered = true;
        let why = format!("{why}; writes are refused until a restart");
        g.broken = Some(why.clone());
        unavailable(&why)
    }

    /// Waits (a bounded number of times) for the pending batch and the one
    /// in flight to be flushed; true when nothing is left.
    fn wait_idle(&self, g: &mut MutexGuard<'_, Inner>) -> bool {
        for _ in 0..SNAPSHOT_FLUSH_WAITS_MAX {
            if !g.flushing && g.pending_records == 0 {
                break;
            }
            let batch = if g.flushing {
                g.flight.clone()
            } else {
                g.batch.clone()
            };
            MutexGuard::unlocked(g, || batch.wait().ok());
        }
        !g.flushing && g.pending.is_empty()
    }

    /// A clean stop: refuses every later append, lets what is pending be
    /// flushed, and writes the `CLEAN` marker saying exactly what the
    /// journal holds (unless the journal is broken: then no marker, and the
    /// next start recovers as after a crash).
    pub fn close(&self) {
        let mut g = self.inner.lock();
        g.closed = true;
        let idle = self.wait_idle(&mut g);
        let path = self.dir.file(false, g.generation);
        let usable = match (&g.broken, idle) {
            (Some(why), _) => Err(why.clone()),
            (None, false) => Err("records were still being flushed".into()),
            (None, true) => self
                .dir
                .check()
                .and_then(|()| g.journal_id.check(&path, "journal")),
        };
        if let Err(why) = usable {
            tracing::error!(
                "journal: no clean-shutdown marker written ({why}); the next start recovers as after a crash"
            );
            return;
        }
        let clean = Clean {
            generation: g.generation,
            journal_bytes: g.synced_len,
            journal_records: g.synced_records,
            journal_crc32: g.synced_crc32,
        };
        match marker::write(self.dir.path(), &clean) {
            Ok(()) => {
                g.clean_marker = true;
                tracing::info!(
                    journal = %path.display(),
                    bytes = clean.journal_bytes,
                    records = clean.journal_records,
                    crc32 = format!("{:08x}", clean.journal_crc32),
                    "journal: clean shutdown recorded ({})",
                    marker::CLEAN_FILE
                );
            }
            Err(e) => tracing::error!("journal: cannot write the clean-shutdown marker ({e}); the next start recovers as after a crash"),
        }
    }

    fn start_generation(&self, g: &mut MutexGuard<'_, Inner>, snapshot: &[u8]) -> std::io::Result<()> {
        self.dir.check().map_err(std::io::Error::other)?;
        if g.clean_marker {
            marker::remove(self.dir.path())?;
            g.clean_marker = false;
        }
        let next = g.generation + 1;
        let journal = self.dir.file(false, next);
        let file = File::create(&journal)?;
        file.sync_all()?;
        let journal_id = id_of(&file)?;
        if !planted::skip(Skip::Dir) {
            self.dir.sync()?;
        }
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
        g.synced_records = 0;
        g.synced_crc32 = 0;
        g.journal_id = journal_id;
        g.snapshot_bytes = snapshot.len() as u64;
        if let Err(e) = written {
            // The directory's sync failed: write nothing until a repair.
            g.broken = Some(format!("a snapshot's directory sync failed: {e}"));
            return Err(e);
        }
        g.file = Some(file);
        let _ = std::fs::remove_file(self.dir.file(false, old));
        let _ = std::fs::remove_file(self.dir.file(true, old));
        if !planted::skip(Skip::Dir) {
            let _ = self.dir.sync();
        }
        Ok(())
    }
}

impl Storage for Journal {
    fn commit(&self, records: &[Record]) -> Result<(), StorageError> {
        match self.append(records, &[])? {
            Some(ticket) => ticket.wait(),
            None => Ok(()),
        }
    }

    fn append(&self, records: &[Record], after: &[&Ticket]) -> Result<Option<Ticket>, StorageError> {
        if records.is_empty() {
            return Ok(None);
        }
        let mut frames = Vec::with_capacity(records.len() * 96);
        records.iter().for_each(|r| encode(r, &mut frames));
        let mut g = self.inner.lock();
        if g.closed {
            return Err(unavailable("the journal is closed: the server is shutting down"));
        }
        // Records decided on state a failed flush left are never written.
        if let Some(Err(e)) = after.iter().find_map(|t| t.status().filter(|r| r.is_err())) {
            return Err(e.clone());
        }
        self.usable(&mut g)?;
        g.pending.extend_from_slice(&frames);
        g.pending_records += records.len();
        if !g.flushing {
            self.work.notify_one();
        }
        Ok(Some(g.batch.clone()))
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
        // What is pending now was appended before the snapshot's state was
        // taken (or by an open meanwhile): let the flusher write it first.
        let idle = self.wait_idle(&mut g);
        if g.broken.is_some() || g.closed || !idle {
            return Err(StorageError(
                "the journal is busy, closed or broken; no snapshot now".into(),
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

/// What a flush checks its batch against (taken under the lock, used outside it).
struct Watch {
    journal: std::path::PathBuf,
    journal_id: FileId,
    clean_marker: bool,
}

/// Why a flush failed: an I/O error (repairable) or tampering (not).
enum Failure {
    Io(std::io::Error),
    Tampered(String),
}

fn id_of(file: &File) -> std::io::Result<FileId> {
    FileId::of_file(file)
}

/// Where an operator can still read the open journal, e.g. " (/proc/42/fd/7)".
#[cfg(target_os = "linux")]
fn open_file_hint(file: &File) -> String {
    use std::os::fd::AsRawFd;
    format!(" (/proc/{}/fd/{})", std::process::id(), file.as_raw_fd())
}

#[cfg(not(target_os = "linux"))]
fn open_file_hint(_file: &File) -> String {
    String::new()
}

fn unavailable(why: &str) -> StorageError {
    StorageError(format!("storage unavailable: {why}"))
}
