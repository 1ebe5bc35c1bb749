//! What every engine implements (make one group of records durable as one
//! unit), and the two ways callers reach it: `Serial` (each caller's group
//! is its own sync or transaction, callers queue on the engine's lock) and
//! `Grouped` (the journal's group commit, leader/follower as the server had
//! it at 88686da; it now flushes from a thread of its own, with the same one
//! sync per pending batch): callers that arrive while a sync runs are merged
//! into the next one. The grouping is engine-independent, so it is measured
//! in front of every engine.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::workload::Rec;

/// A durable store of op records.
pub trait Engine: Send + Sync {
    /// Makes `recs` durable as one unit: one sync, one transaction.
    fn write_group(&self, recs: &[Rec]) -> Result<(), String>;
}

/// How callers commit: one group each, counting durable syncs.
pub trait Committer: Send + Sync {
    fn commit(&self, recs: &[Rec]) -> Result<(), String>;
    /// Durable syncs (engine groups) so far.
    fn syncs(&self) -> u64;
}

/// Each caller's group is one engine group.
pub struct Serial {
    engine: Box<dyn Engine>,
    syncs: AtomicU64,
}

impl Serial {
    pub fn new(engine: Box<dyn Engine>) -> Serial {
        Serial {
            engine,
            syncs: AtomicU64::new(0),
        }
    }
}

impl Committer for Serial {
    fn commit(&self, recs: &[Rec]) -> Result<(), String> {
        self.engine.write_group(recs)?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}

/// One flush's callers share this; set once the flush is over.
#[derive(Default)]
struct Batch {
    result: OnceLock<Result<(), String>>,
    wake: Condvar,
}

struct Pending {
    recs: Vec<Rec>,
    batch: Arc<Batch>,
    flushing: bool,
}

/// Group commit as `server/src/backend/ledger/storage/journal.rs` did it at 88686da.
pub struct Grouped {
    engine: Box<dyn Engine>,
    inner: Mutex<Pending>,
    syncs: AtomicU64,
}

impl Grouped {
    pub fn new(engine: Box<dyn Engine>) -> Grouped {
        let inner = Pending {
            recs: Vec::new(),
            batch: Arc::default(),
            flushing: false,
        };
        Grouped {
            engine,
            inner: Mutex::new(inner),
            syncs: AtomicU64::new(0),
        }
    }

    /// Writes the whole pending batch as one engine group, then wakes its
    /// callers; drops the lock for the I/O.
    fn flush(&self, g: &mut MutexGuard<'_, Pending>) {
        let recs = std::mem::take(&mut g.recs);
        let batch = std::mem::take(&mut g.batch);
        g.flushing = true;
        let result = MutexGuard::unlocked(g, || self.engine.write_group(&recs));
        g.flushing = false;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        let _ = batch.result.set(result);
        batch.wake.notify_all();
        g.batch.wake.notify_one();
    }
}

impl Committer for Grouped {
    fn commit(&self, recs: &[Rec]) -> Result<(), String> {
        let mut g = self.inner.lock();
        g.recs.extend_from_slice(recs);
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

    fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}

/// Makes creations and renames in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("{}: {e}", dir.display()))
}

/// Bytes of every file in `dir` (apparent sizes).
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// Bytes this process has handed to `write`/`pwrite` so far (Linux
/// `/proc/self/io` `wchar`): the engine's own write volume, before the page
/// cache. (`write_bytes` would count whole folios as they are dirtied, up to
/// 1 MiB each on this kernel's ext4, so it overstates a small overwrite.)
/// The filesystem's own journal writes are in neither. 0 where unknown.
pub fn process_write_bytes() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Syncs every file in `dir` and drops it from the page cache, so that the
/// next read comes from the disk (only our own files: no global cache drop).
pub fn evict(dir: &Path) -> Result<(), String> {
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let file = File::open(&path).map_err(|e| e.to_string())?;
        file.sync_all().map_err(|e| e.to_string())?;
        fadvise_dontneed(&file);
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn fadvise_dontneed(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid descriptor borrowed from `file` for this call; posix_fadvise
    // only advises the kernel and touches no memory of ours.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
    }
}

#[cfg(not(target_os = "linux"))]
fn fadvise_dontneed(_file: &File) {}
