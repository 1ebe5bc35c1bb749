//! The bookkeeping of faultfs, with no FUSE in it: an in-memory tree of
//! directories and files in which every node keeps two states, what a
//! reader sees now and what a disk would hold after a power loss.
//!
//! The model (the strict one of ALICE and CrashMonkey, stricter than ext4's
//! `data=ordered`):
//! - A file's data is durable only up to its last `fsync`/`fdatasync`: the
//!   writes and truncations since then are kept as a pending list, in order,
//!   and a sync applies them to the durable copy.
//! - A directory's entries are durable only up to the directory's last
//!   `fsync`: a create, unlink or rename is undone by a power loss unless
//!   the directory (both directories, for a rename across two) was synced
//!   after it. Syncing a file does not make its name durable.
//! - Data belongs to the inode, not the name: a file renamed without a
//!   directory sync comes back under its old name, with whatever of its
//!   data was synced (under either name).
//! - A power loss rebuilds the visible tree from the durable one, starting
//!   at the root; nodes no durable entry reaches are gone. [`Loss`] picks
//!   whether everything unsynced is dropped, a random part of it (seeded),
//!   or all of it but one write torn at a 4 KiB boundary.

use std::collections::{BTreeMap, HashMap};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// An inode number; the root is 1 (as FUSE wants).
pub type Ino = u64;
pub const ROOT: Ino = 1;
/// The sector size a torn write is cut at.
pub const SECTOR_BYTES: u64 = 4096;

/// An errno, as FUSE replies carry it.
pub type Errno = i32;

/// A change to a file's data not yet synced.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default, Clone)]
pub struct FileNode {
    /// What reads see.
    pub data: Vec<u8>,
    /// What the disk holds.
    durable: Vec<u8>,
    pending: Vec<Pending>,
}

#[derive(Debug, Default, Clone)]
pub struct DirNode {
    /// What lookups see.
    pub entries: BTreeMap<String, Ino>,
    /// What the disk holds.
    durable: BTreeMap<String, Ino>,
}

#[derive(Debug, Clone)]
pub enum Node {
    File(FileNode),
    Dir(DirNode),
}

/// What a power loss keeps of the unsynced changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Nothing unsynced survives.
    All,
    /// Each unsynced write, truncation and directory entry survives with
    /// probability 1/2 (in order, per file), drawn from the seed.
    Random(u64),
    /// Nothing unsynced survives except, in one file, the changes before
    /// one write and that write's first part, cut at a 4 KiB boundary.
    Torn(u64),
}

/// What a power loss did, for the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LossReport {
    pub dropped_changes: usize,
    pub kept_changes: usize,
    pub dropped_entries: usize,
    pub torn: Option<String>,
}

/// The whole tree.
#[derive(Debug, Clone)]
pub struct Model {
    nodes: HashMap<Ino, Node>,
    next_ino: Ino,
}

impl Default for Model {
    fn default() -> Self {
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, Node::Dir(DirNode::default()));
        Model {
            nodes,
            next_ino: ROOT + 1,
        }
    }
}

impl Model {
    pub fn node(&self, ino: Ino) -> Result<&Node, Errno> {
        self.nodes.get(&ino).ok_or(libc::ENOENT)
    }

    fn dir(&self, ino: Ino) -> Result<&DirNode, Errno> {
        match self.node(ino)? {
            Node::Dir(d) => Ok(d),
            Node::File(_) => Err(libc::ENOTDIR),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Result<&mut DirNode, Errno> {
        match self.nodes.get_mut(&ino).ok_or(libc::ENOENT)? {
            Node::Dir(d) => Ok(d),
            Node::File(_) => Err(libc::ENOTDIR),
        }
    }

    fn file_mut(&mut self, ino: Ino) -> Result<&mut FileNode, Errno> {
        match self.nodes.get_mut(&ino).ok_or(libc::ENOENT)? {
            Node::File(f) => Ok(f),
            Node::Dir(_) => Err(libc::EISDIR),
        }
    }

    pub fn lookup(&self, parent: Ino, name: &str) -> Result<Ino, Errno> {
        self.dir(parent)?.entries.get(name).copied().ok_or(libc::ENOENT)
    }

    /// The visible entries of a directory.
    pub fn entries(&self, dir: Ino) -> Result<&BTreeMap<String, Ino>, Errno> {
        Ok(&self.dir(dir)?.entries)
    }

    fn add(&mut self, parent: Ino, name: &str, node: Node) -> Result<Ino, Errno> {
        if self.dir(parent)?.entries.contains_key(name) {
            return Err(libc::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, node);
        self.dir_mut(parent)?.entries.insert(name.to_owned(), ino);
        Ok(ino)
    }

    /// A new empty file (its name not durable until `parent` is synced).
    pub fn create_file(&mut self, parent: Ino, name: &str) -> Result<Ino, Errno> {
        self.add(parent, name, Node::File(FileNode::default()))
    }

    pub fn mkdir(&mut self, parent: Ino, name: &str) -> Result<Ino, Errno> {
        self.add(parent, name, Node::Dir(DirNode::default()))
    }

    /// Removes a file's name (the node stays while a durable entry may name it).
    pub fn unlink(&mut self, parent: Ino, name: &str) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        if let Node::Dir(_) = self.node(ino)? {
            return Err(libc::EISDIR);
        }
        self.dir_mut(parent)?.entries.remove(name);
        Ok(())
    }

    pub fn rmdir(&mut self, parent: Ino, name: &str) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        if !self.dir(ino)?.entries.is_empty() {
            return Err(libc::ENOTEMPTY);
        }
        self.dir_mut(parent)?.entries.remove(name);
        Ok(())
    }

    /// Renames, replacing a file (or empty directory) at the target.
    pub fn rename(&mut self, parent: Ino, name: &str, to_parent: Ino, to_name: &str) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        self.dir(to_parent)?;
        if let Ok(old) = self.lookup(to_parent, to_name) {
            if old == ino {
                return Ok(());
            }
            match (self.node(ino)?, self.node(old)?) {
                (Node::File(_), Node::Dir(_)) => return Err(libc::EISDIR),
                (Node::Dir(_), Node::File(_)) => return Err(libc::ENOTDIR),
                (Node::Dir(_), Node::Dir(d)) if !d.entries.is_empty() => return Err(libc::ENOTEMPTY),
                _ => {}
            }
        }
        self.dir_mut(parent)?.entries.remove(name);
        self.dir_mut(to_parent)?.entries.insert(to_name.to_owned(), ino);
        Ok(())
    }

    pub fn read(&self, ino: Ino, offset: u64, size: usize) -> Result<&[u8], Errno> {
        match self.node(ino)? {
            Node::File(f) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(f.data.len());
                let end = start.saturating_add(size).min(f.data.len());
                Ok(&f.data[start..end])
            }
            Node::Dir(_) => Err(libc::EISDIR),
        }
    }

    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<(), Errno> {
        let f = self.file_mut(ino)?;
        write_at(&mut f.data, offset, data).ok_or(libc::EFBIG)?;
        f.pending.push(Pending::Write {
            offset,
            data: data.to_vec(),
        });
        Ok(())
    }

    pub fn set_len(&mut self, ino: Ino, len: u64) -> Result<(), Errno> {
        let f = self.file_mut(ino)?;
        f.data.resize(usize::try_from(len).map_err(|_| libc::EFBIG)?, 0);
        f.pending.push(Pending::SetLen(len));
        Ok(())
    }

    /// `fsync`/`fdatasync` of a file, or `fsync` of a directory.
    pub fn sync(&mut self, ino: Ino) -> Result<(), Errno> {
        match self.nodes.get_mut(&ino).ok_or(libc::ENOENT)? {
            Node::File(f) => {
                for p in std::mem::take(&mut f.pending) {
                    apply(&mut f.durable, &p);
                }
            }
            Node::Dir(d) => d.durable = d.entries.clone(),
        }
        Ok(())
    }

    /// Syncs everything (a clean unmount: the OS writes back all it has).
    pub fn sync_all(&mut self) {
        let inos: Vec<Ino> = self.nodes.keys().copied().collect();
        for ino in inos {
            let _ = self.sync(ino);
        }
    }

    /// The power goes out and comes back: the tree becomes what the disk
    /// holds, with `loss` deciding what of the unsynced changes survives.
    pub fn power_loss(&mut self, loss: Loss) -> LossReport {
        let mut report = LossReport::default();
        let torn = match loss {
            Loss::Torn(seed) => self.pick_torn(seed),
            _ => None,
        };
        let mut rng = SmallRng::seed_from_u64(match loss {
            Loss::Random(s) => s,
            _ => 0,
        });
        let mut inos: Vec<Ino> = self.nodes.keys().copied().collect();
        inos.sort_unstable();
        for ino in inos {
            let keep = |rng: &mut SmallRng| matches!(loss, Loss::Random(_)) && rng.random_bool(0.5);
            match self.nodes.get_mut(&ino) {
                Some(Node::File(f)) => lose_file(ino, f, &torn, &mut rng, keep, &mut report),
                Some(Node::Dir(d)) => lose_dir(d, &mut rng, keep, &mut report),
                None => {}
            }
        }
        self.collect();
        report
    }

    /// For a torn write: (file, index of the write, bytes of it kept).
    fn pick_torn(&self, seed: u64) -> Option<(Ino, usize, usize)> {
        let mut candidates: Vec<(Ino, usize, u64, u64)> = Vec::new();
        for (&ino, node) in &self.nodes {
            let Node::File(f) = node else { continue };
            for (i, p) in f.pending.iter().enumerate() {
                if let Pending::Write { offset, data } = p {
                    candidates.push((ino, i, *offset, data.len() as u64));
                }
            }
        }
        candidates.sort_unstable();
        // Prefer a write that a 4 KiB boundary can tear (else one is lost whole).
        let crosses = |&(_, _, offset, len): &(Ino, usize, u64, u64)| {
            offset / SECTOR_BYTES + 1 < (offset + len).div_ceil(SECTOR_BYTES)
        };
        if candidates.iter().any(crosses) {
            candidates.retain(crosses);
        }
        let mut rng = SmallRng::seed_from_u64(seed);
        let &(ino, i, offset, len) = candidates.get(rng.random_range(0..candidates.len().max(1)))?;
        // The 4 KiB boundaries strictly inside the write; none: it is lost whole.
        let first = offset / SECTOR_BYTES + 1;
        let last = (offset + len).div_ceil(SECTOR_BYTES);
        let kept = if first < last {
            rng.random_range(first..last) * SECTOR_BYTES - offset
        } else {
            0
        };
        Some((ino, i, kept as usize))
    }

    /// Drops the nodes no durable entry reaches from the root.
    fn collect(&mut self) {
        let mut reached = vec![ROOT];
        let mut i = 0;
        while i < reached.len() {
            if let Some(Node::Dir(d)) = self.nodes.get(&reached[i]) {
                reached.extend(d.entries.values().copied());
            }
            i += 1;
        }
        self.nodes.retain(|ino, _| reached.contains(ino));
    }
}

/// A file after a power loss: its durable data plus what survives of the pending list.
fn lose_file(
    ino: Ino,
    f: &mut FileNode,
    torn: &Option<(Ino, usize, usize)>,
    rng: &mut SmallRng,
    keep: impl Fn(&mut SmallRng) -> bool,
    report: &mut LossReport,
) {
    for (i, p) in std::mem::take(&mut f.pending).into_iter().enumerate() {
        let survivor = match (torn, &p) {
            (Some((t, at, kept)), Pending::Write { offset, data }) if *t == ino && *at == i => {
                report.torn = Some(format!(
                    "inode {ino}: write of {} bytes at {offset} torn after {kept} bytes",
                    data.len()
                ));
                Some(Pending::Write {
                    offset: *offset,
                    data: data[..*kept].to_vec(),
                })
            }
            (Some((t, at, _)), _) if *t == ino && i < *at => Some(p),
            _ if keep(rng) => Some(p),
            _ => None,
        };
        match survivor {
            Some(Pending::Write { data, .. }) if data.is_empty() => report.dropped_changes += 1,
            Some(p) => {
                apply(&mut f.durable, &p);
                report.kept_changes += 1;
            }
            None => report.dropped_changes += 1,
        }
    }
    f.data = f.durable.clone();
}

/// A directory after a power loss: its durable entries, each changed name
/// taking its new binding only if `keep` says so.
fn lose_dir(
    d: &mut DirNode,
    rng: &mut SmallRng,
    keep: impl Fn(&mut SmallRng) -> bool,
    report: &mut LossReport,
) {
    let mut names: Vec<String> = d.entries.keys().chain(d.durable.keys()).cloned().collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let now = d.entries.get(&name).copied();
        if now == d.durable.get(&name).copied() {
            continue;
        }
        if keep(rng) {
            match now {
                Some(ino) => d.durable.insert(name, ino),
                None => d.durable.remove(&name),
            };
        } else {
            report.dropped_entries += 1;
        }
    }
    d.entries = d.durable.clone();
}

fn apply(data: &mut Vec<u8>, p: &Pending) {
    match p {
        Pending::Write { offset, data: bytes } => {
            write_at(data, *offset, bytes);
        }
        Pending::SetLen(len) => data.resize(usize::try_from(*len).unwrap_or(usize::MAX), 0),
    }
}

/// Writes `bytes` at `offset`, zero-filling a gap; None past usize.
fn write_at(data: &mut Vec<u8>, offset: u64, bytes: &[u8]) -> Option<()> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(bytes.len())?;
    if data.len() < end {
        data.resize(end, 0);
    }
    data[start..end].copy_from_slice(bytes);
    Some(())
}

impl Model {
    /// A node with the given visible and durable state, for loading a disk.
    pub fn insert_loaded(&mut self, parent: Ino, name: &str, node: Node) -> Result<Ino, Errno> {
        let ino = self.add(parent, name, node)?;
        self.sync(parent)?;
        Ok(ino)
    }

    /// A loaded file: its data is durable.
    pub fn loaded_file(data: Vec<u8>) -> Node {
        Node::File(FileNode {
            durable: data.clone(),
            data,
            pending: Vec::new(),
        })
    }

    /// How many changes wait for a sync (for the control file's status).
    pub fn unsynced(&self) -> (usize, usize) {
        let mut changes = 0;
        let mut entries = 0;
        for node in self.nodes.values() {
            match node {
                Node::File(f) => changes += f.pending.len(),
                Node::Dir(d) => entries += usize::from(d.entries != d.durable),
            }
        }
        (changes, entries)
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
