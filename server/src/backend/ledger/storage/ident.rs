//! Which file a path names: its (device, inode). The journal remembers the
//! identity of the data dir and of the journal file it holds open, and the
//! flusher compares them with what the paths name now (one `stat` each per
//! flushed batch, never per op), so a dir or journal removed or replaced
//! while the server runs is seen before the next acknowledgement.

use std::fs::{File, Metadata};
use std::path::Path;

/// A file's identity: device and inode (unix); elsewhere nothing is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The identity of an open file.
    pub fn of_file(file: &File) -> std::io::Result<FileId> {
        file.metadata().map(|m| FileId::of(&m))
    }

    #[cfg(unix)]
    fn of(meta: &Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    #[cfg(not(unix))]
    fn of(_meta: &Metadata) -> FileId {
        FileId { dev: 0, ino: 0 }
    }

    /// Ok if `path` still names this file, else why not (naming the path).
    pub fn check(&self, path: &Path, what: &str) -> Result<(), String> {
        match std::fs::metadata(path) {
            Ok(meta) if FileId::of(&meta) == *self => Ok(()),
            Ok(_) => Err(format!(
                "the {what} {} was replaced by another file while the server ran",
                path.display()
            )),
            Err(e) => Err(format!(
                "the {what} {} was removed while the server ran ({e})",
                path.display()
            )),
        }
    }
}
