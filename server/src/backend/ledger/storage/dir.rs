//! The data directory: locked against a second server (an exclusive `flock`
//! on the directory itself, which cannot be deleted from under the server,
//! and on the `LOCK` file inside it, which older servers take), and the
//! generation `g` of the files in force: `snapshot.g` (absent for g = 0) plus
//! `journal.g`. A snapshot starts generation g+1 (see `Journal::snapshot`);
//! older generations are deleted once the newer snapshot is in place.
//! Recovery checks the journal against the clean-shutdown marker (see
//! `marker`), and refuses a journal that is missing where records existed.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::ident::FileId;
use super::marker::{self, Clean};
use super::planted::{self, Skip};
use super::scan::{scan, Scanned};
use super::Record;

/// The lock file's name inside the data dir.
const LOCK_FILE: &str = "LOCK";
const SNAPSHOT_PREFIX: &str = "snapshot.";
const JOURNAL_PREFIX: &str = "journal.";
const TMP_SUFFIX: &str = ".tmp";

/// A locked data directory.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    /// The directory, open and flock'ed for the process's life.
    _handle: File,
    /// The directory's identity, to see it removed or replaced.
    id: FileId,
    /// The `LOCK` file, flock'ed too (what servers before the directory lock took).
    _lock: File,
}

/// What recovery read from a data directory.
#[derive(Debug)]
pub struct Recovered {
    /// The generation in force.
    pub generation: u64,
    /// The snapshot's records (empty for generation 0).
    pub snapshot: Vec<Record>,
    pub snapshot_bytes: u64,
    /// The journal's valid records, and its length once a torn tail is cut.
    pub journal: Scanned,
    /// The CRC-32 of the journal's valid bytes.
    pub journal_crc32: u32,
    /// Whether a clean-shutdown marker is on disk (removed before the next write).
    pub clean_marker: bool,
}

impl DataDir {
    /// Locks `path` (created if missing), or says which server holds it.
    pub fn lock(path: &Path) -> Result<DataDir, String> {
        create_durably(path).map_err(|e| format!("cannot create data dir {}: {e}", path.display()))?;
        let handle = File::open(path).map_err(|e| format!("cannot open data dir {}: {e}", path.display()))?;
        let in_use = |what: &Path, e: std::io::Error| {
            format!(
                "data dir {} is in use by another bank-server (flock on {}): {e}",
                path.display(),
                what.display()
            )
        };
        flock(&handle).map_err(|e| in_use(path, e))?;
        let id = FileId::of_file(&handle).map_err(|e| io_error(path, &e))?;
        let lock_path = path.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("cannot open lock file {}: {e}", lock_path.display()))?;
        flock(&lock).map_err(|e| in_use(&lock_path, e))?;
        Ok(DataDir {
            path: path.to_owned(),
            _handle: handle,
            id,
            _lock: lock,
        })
    }

    /// Ok while the data dir's path still names the directory locked at start.
    pub fn check(&self) -> Result<(), String> {
        self.id.check(&self.path, "data dir")
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of generation `g`'s snapshot or journal.
    pub fn file(&self, prefix_snapshot: bool, g: u64) -> PathBuf {
        let prefix = if prefix_snapshot {
            SNAPSHOT_PREFIX
        } else {
            JOURNAL_PREFIX
        };
        self.path.join(format!("{prefix}{g}"))
    }

    /// Makes renames and creations in the directory durable.
    pub fn sync(&self) -> std::io::Result<()> {
        File::open(&self.path)?.sync_all()
    }

    /// Reads the data in force: the newest snapshot and its journal, checked
    /// against the clean-shutdown marker if there is one, else with a torn
    /// journal tail cut off (and synced); anything else refuses, naming the
    /// file and what is wrong.
    pub fn recover(&self) -> Result<Recovered, String> {
        let generation = self.generations(SNAPSHOT_PREFIX)?.into_iter().max().unwrap_or(0);
        let clean = marker::read(&self.path)?;
        if let Some(m) = clean.filter(|m| m.generation != generation) {
            return Err(format!(
                "{}: the clean shutdown left generation {} ({}), but the newest snapshot here is generation {generation}; refusing to start rather than lose acknowledged operations",
                self.path.join(marker::CLEAN_FILE).display(),
                m.generation,
                self.file(true, m.generation).display(),
            ));
        }
        self.clean(generation)?;
        let (snapshot, snapshot_bytes) = if generation == 0 {
            (Vec::new(), 0)
        } else {
            self.read_snapshot(generation)?
        };
        let (journal, journal_crc32) = self.read_journal(generation, clean.as_ref())?;
        Ok(Recovered {
            generation,
            snapshot,
            snapshot_bytes,
            journal,
            journal_crc32,
            clean_marker: clean.is_some(),
        })
    }

    fn read_snapshot(&self, g: u64) -> Result<(Vec<Record>, u64), String> {
        let path = self.file(true, g);
        let buf = read(&path)?;
        let scanned = scan(&buf).map_err(|d| damaged(&path, d.offset, &d.reason))?;
        if let Some(torn) = scanned.torn {
            // A snapshot is synced whole before it is renamed into place.
            return Err(damaged(&path, scanned.valid_len, &torn));
        }
        Ok((scanned.records, buf.len() as u64))
    }

    /// The journal of generation `g`: checked against `clean` when the last
    /// run stopped cleanly, else with a torn tail cut off.
    fn read_journal(&self, g: u64, clean: Option<&Clean>) -> Result<(Scanned, u32), String> {
        let path = self.file(false, g);
        if !path.exists() {
            self.missing_journal(&path, g, clean)?;
        }
        let buf = read(&path)?;
        if let Some(m) = clean {
            check_clean(&path, &buf, m)?;
        }
        let scanned = scan(&buf).map_err(|d| damaged(&path, d.offset, &d.reason))?;
        if let Some(m) = clean.filter(|m| m.journal_records != scanned.records.len() as u64) {
            return Err(damaged(
                &path,
                scanned.valid_len,
                &format!(
                    "{} records where the clean shutdown left {}",
                    scanned.records.len(),
                    m.journal_records
                ),
            ));
        }
        if let Some(torn) = &scanned.torn {
            cut_torn_tail(&path, buf.len() as u64, &scanned, torn)?;
        }
        let valid = usize::try_from(scanned.valid_len)
            .unwrap_or(buf.len())
            .min(buf.len());
        Ok((scanned, crc32fast::hash(&buf[..valid])))
    }

    /// A journal that is not there: refused where a snapshot or the marker
    /// says one existed, else (a new data dir) created empty.
    fn missing_journal(&self, path: &Path, g: u64, clean: Option<&Clean>) -> Result<(), String> {
        if g > 0 || clean.is_some() {
            let by = if clean.is_some() {
                "the clean-shutdown marker"
            } else {
                "the snapshot"
            };
            return Err(format!(
                "{} is missing, but {by} says this generation has one; refusing to start rather than lose acknowledged operations",
                path.display()
            ));
        }
        File::create(path).map_err(|e| io_error(path, &e))?;
        self.sync().map_err(|e| io_error(&self.path, &e))
    }

    /// Every generation number of files named `prefix` + number.
    fn generations(&self, prefix: &str) -> Result<Vec<u64>, String> {
        let entries = fs::read_dir(&self.path).map_err(|e| io_error(&self.path, &e))?;
        let names = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok());
        Ok(names
            .filter_map(|n| n.strip_prefix(prefix)?.parse().ok())
            .collect())
    }

    /// Removes what a finished or interrupted snapshot left behind: older
    /// generations, temporary files, and an empty journal of a generation
    /// whose snapshot never made it. A non-empty one would be data: refuse.
    fn clean(&self, g: u64) -> Result<(), String> {
        for old in self.generations(SNAPSHOT_PREFIX)?.into_iter().filter(|&n| n < g) {
            remove(&self.file(true, old))?;
        }
        for n in self.generations(JOURNAL_PREFIX)? {
            let path = self.file(false, n);
            let len = fs::metadata(&path).map_err(|e| io_error(&path, &e))?.len();
            if n > g && len > 0 {
                return Err(format!(
                    "{}: {len} bytes of journal without its snapshot",
                    path.display()
                ));
            }
            if n != g {
                remove(&path)?;
            }
        }
        let entries = fs::read_dir(&self.path).map_err(|e| io_error(&self.path, &e))?;
        for entry in entries.filter_map(|e| e.ok()) {
            if entry.file_name().to_string_lossy().ends_with(TMP_SUFFIX) {
                remove(&entry.path())?;
            }
        }
        Ok(())
    }

    /// Writes `bytes` as generation `g`'s snapshot: to a temporary file,
    /// synced, then renamed into place and the directory synced.
    pub fn write_snapshot(&self, g: u64, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.file(true, g);
        let tmp = self.path.join(format!("{SNAPSHOT_PREFIX}{g}{TMP_SUFFIX}"));
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        if !planted::skip(Skip::Snapshot) {
            file.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        if planted::skip(Skip::Dir) {
            return Ok(());
        }
        self.sync()
    }
}

/// Creates `path` and any missing parents, then syncs the parent of each
/// directory created: a new directory's name is durable only once its parent
/// is synced, and without it a power loss takes the whole data dir, synced
/// journal and all (found by `.ci/powerloss.sh`).
fn create_durably(path: &Path) -> std::io::Result<()> {
    let missing: Vec<&Path> = path
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
        .collect();
    fs::create_dir_all(path)?;
    for created in missing.iter().rev() {
        let parent = created
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut buf))
        .map_err(|e| io_error(path, &e))?;
    Ok(buf)
}

fn remove(path: &Path) -> Result<(), String> {
    fs::remove_file(path).map_err(|e| io_error(path, &e))
}

fn io_error(path: &Path, e: &std::io::Error) -> String {
    format!("{}: {e}", path.display())
}

/// Refuses a journal that differs from what the clean shutdown left.
fn check_clean(path: &Path, buf: &[u8], m: &Clean) -> Result<(), String> {
    let (len, want) = (buf.len() as u64, m.journal_bytes);
    let why = if len < want {
        format!("{len} bytes, but the clean shutdown left {want}: bytes {len}..{want} are missing")
    } else if len > want {
        format!("{len} bytes, but the clean shutdown left {want}: bytes {want}..{len} were added since")
    } else if crc32fast::hash(buf) != m.journal_crc32 {
        match scan(buf) {
            Err(d) => format!(
                "changed since the clean shutdown: damaged at byte {}: {}",
                d.offset, d.reason
            ),
            Ok(s) => format!(
                "changed since the clean shutdown (its CRC-32 differs; first invalid byte {})",
                s.valid_len
            ),
        }
    } else {
        return Ok(());
    };
    Err(format!(
        "{} is {why}; refusing to start rather than lose acknowledged operations (restore the file, or see docs/operations.md)",
        path.display()
    ))
}

/// Cuts off the torn tail after a crash (no clean-shutdown marker), saying
/// how many bytes go: most likely the write the crash cut short, whose
/// callers never heard back, but nothing here can prove that.
fn cut_torn_tail(path: &Path, len: u64, scanned: &Scanned, torn: &str) -> Result<(), String> {
    tracing::warn!(
        file = %path.display(),
        cut_bytes = len - scanned.valid_len,
        from_byte = scanned.valid_len,
        to_byte = len,
        kept_records = scanned.records.len(),
        "journal: cutting off {} bytes at its tail ({torn}); the last run did not stop cleanly (no CLEAN marker), so this is most likely a write the crash cut short, but if the file was cut or damaged otherwise, operations in those bytes are lost",
        len - scanned.valid_len
    );
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_error(path, &e))?;
    file.set_len(scanned.valid_len).map_err(|e| io_error(path, &e))?;
    file.sync_all().map_err(|e| io_error(path, &e))
}

fn damaged(path: &Path, offset: u64, reason: &str) -> String {
    format!(
        "{} is damaged at byte {offset}: {reason}; refusing to start rather than lose acknowledged operations",
        path.display()
    )
}

/// An exclusive, non-blocking flock on `file`.
#[cfg(target_os = "linux")]
fn flock(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock takes a valid open descriptor (borrowed from `file`, open
    // for this call's duration) and flags; it touches no memory of ours.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn flock(_file: &File) -> std::io::Result<()> {
    Ok(())
}
