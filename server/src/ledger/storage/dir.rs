//! The data directory: a lock file that keeps a second server out, and the
//! generation `g` of the files in force: `snapshot.g` (absent for g = 0) plus
//! `journal.g`. A snapshot starts generation g+1 (see `Journal::snapshot`);
//! older generations are deleted once the newer snapshot is in place.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

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
    /// Held open for the process's life: the flock lives as long as it does.
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
}

impl DataDir {
    /// Locks `path` (created if missing), or says which server holds it.
    pub fn lock(path: &Path) -> Result<DataDir, String> {
        fs::create_dir_all(path).map_err(|e| format!("cannot create data dir {}: {e}", path.display()))?;
        let lock_path = path.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("cannot open lock file {}: {e}", lock_path.display()))?;
        flock(&lock).map_err(|e| {
            format!(
                "data dir {} is in use by another bank-server (lock file {}): {e}",
                path.display(),
                lock_path.display()
            )
        })?;
        Ok(DataDir {
            path: path.to_owned(),
            _lock: lock,
        })
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

    /// Reads the data in force: the newest snapshot and its journal, with a
    /// torn journal tail cut off (and synced); anything else refuses, naming
    /// the file and byte offset.
    pub fn recover(&self) -> Result<Recovered, String> {
        let generation = self.generations(SNAPSHOT_PREFIX)?.into_iter().max().unwrap_or(0);
        self.clean(generation)?;
        let (snapshot, snapshot_bytes) = if generation == 0 {
            (Vec::new(), 0)
        } else {
            self.read_snapshot(generation)?
        };
        let journal = self.read_journal(generation)?;
        Ok(Recovered {
            generation,
            snapshot,
            snapshot_bytes,
            journal,
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

    fn read_journal(&self, g: u64) -> Result<Scanned, String> {
        let path = self.file(false, g);
        if !path.exists() {
            File::create(&path).map_err(|e| io_error(&path, &e))?;
            self.sync().map_err(|e| io_error(&self.path, &e))?;
        }
        let buf = read(&path)?;
        let scanned = scan(&buf).map_err(|d| damaged(&path, d.offset, &d.reason))?;
        if let Some(torn) = &scanned.torn {
            tracing::warn!(file = %path.display(), "journal: cutting off a torn tail (never acknowledged): {torn}");
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| io_error(&path, &e))?;
            file.set_len(scanned.valid_len).map_err(|e| io_error(&path, &e))?;
            file.sync_all().map_err(|e| io_error(&path, &e))?;
        }
        Ok(scanned)
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
        file.sync_all()?;
        fs::rename(&tmp, &path)?;
        self.sync()
    }
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
