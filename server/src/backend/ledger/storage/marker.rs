//! The clean-shutdown marker `CLEAN`: written (synced, renamed into place)
//! when the server stops with every record synced, it says exactly what the
//! journal held then: its generation, length, record count and the CRC-32
//! of all its bytes. The journal removes it (and syncs the dir) before it
//! writes anything again. At start a marker turns every difference into a
//! refusal naming the file (a cut, an emptied or missing journal, a changed
//! byte); without one the last run crashed and a torn tail is cut off.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

/// The marker's file name inside the data dir.
pub const CLEAN_FILE: &str = "CLEAN";
const TMP_NAME: &str = "CLEAN.tmp";
const HEADER: &str = "bank-server clean shutdown";

/// What a clean shutdown left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clean {
    pub generation: u64,
    pub journal_bytes: u64,
    pub journal_records: u64,
    pub journal_crc32: u32,
}

impl Clean {
    fn render(&self) -> String {
        format!(
            "{HEADER}\ngeneration={}\njournal_bytes={}\njournal_records={}\njournal_crc32={:08x}\n",
            self.generation, self.journal_bytes, self.journal_records, self.journal_crc32
        )
    }

    fn parse(text: &str) -> Option<Clean> {
        let mut lines = text.lines();
        if lines.next()? != HEADER {
            return None;
        }
        let mut field = |key: &str| {
            lines
                .next()?
                .strip_prefix(key)?
                .strip_prefix('=')
                .map(str::to_owned)
        };
        Some(Clean {
            generation: field("generation")?.parse().ok()?,
            journal_bytes: field("journal_bytes")?.parse().ok()?,
            journal_records: field("journal_records")?.parse().ok()?,
            journal_crc32: u32::from_str_radix(&field("journal_crc32")?, 16).ok()?,
        })
    }
}

/// The marker in `dir`, if any; one that does not parse refuses the start.
pub fn read(dir: &Path) -> Result<Option<Clean>, String> {
    let path = dir.join(CLEAN_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => Clean::parse(&text).map(Some).ok_or_else(|| {
            format!(
                "{} is not a clean-shutdown marker this server wrote; refusing to start (remove it only if the journal is known whole)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes `clean` as the marker of `dir`: a temporary file, synced, renamed
/// into place, the directory synced.
pub fn write(dir: &Path, clean: &Clean) -> std::io::Result<()> {
    let tmp = dir.join(TMP_NAME);
    let mut file = File::create(&tmp)?;
    file.write_all(clean.render().as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(CLEAN_FILE))?;
    File::open(dir)?.sync_all()
}

/// Removes the marker of `dir` (if there) and syncs the directory, so that
/// a crash after the next write is never taken for a clean shutdown.
pub fn remove(dir: &Path) -> std::io::Result<()> {
    match fs::remove_file(dir.join(CLEAN_FILE)) {
        Ok(()) => File::open(dir)?.sync_all(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_reads_back_and_a_garbled_one_refuses() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let clean = Clean {
            generation: 3,
            journal_bytes: 4711,
            journal_records: 42,
            journal_crc32: 0xdead_beef,
        };
        write(dir.path(), &clean).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(clean));
        fs::write(dir.path().join(CLEAN_FILE), "generation=x\n").unwrap();
        assert!(read(dir.path()).unwrap_err().contains("CLEAN"));
        remove(dir.path()).unwrap();
        remove(dir.path()).unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
    }
}
