//! The FUSE side of faultfs: serves the [`Model`] at a mount point, plus the
//! control file `/.faultfs` through which a test "loses power" (see the
//! README). Every request takes the one mutex around the model; once the
//! power is lost every request but the control file's fails with EIO (the
//! disk is gone) until the mount is unmounted and mounted again.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use crate::control::{self, Command};
use crate::disk;
use crate::model::{Ino, Loss, Model, Node, ROOT};

/// The control file's name (in the root) and inode number.
pub const CONTROL_NAME: &str = ".faultfs";
const CONTROL_INO: Ino = 1 << 62;
/// How long the kernel may cache names and attributes.
const TTL: Duration = Duration::from_secs(1);

struct State {
    model: Model,
    /// Set by a power loss: the disk is gone until a remount.
    dead: bool,
    /// An armed power loss: it strikes at the n-th directory fsync from now.
    armed_dir_syncs: Option<u32>,
}

/// The mounted filesystem.
pub struct FaultFs {
    state: Mutex<State>,
    backing: PathBuf,
    started: SystemTime,
    /// How long each fsync takes (a slow disk), outside the model's lock, so
    /// that a power loss can land while a sync is in flight.
    sync_delay: Duration,
}

type Res<T> = Result<T, Errno>;

fn errno(e: i32) -> Errno {
    Errno::from_i32(e)
}

impl FaultFs {
    pub fn new(model: Model, backing: PathBuf, sync_delay: Duration) -> FaultFs {
        FaultFs {
            state: Mutex::new(State {
                model,
                dead: false,
                armed_dir_syncs: None,
            }),
            backing,
            started: SystemTime::now(),
            sync_delay,
        }
    }

    /// A sync: the flush takes `sync_delay`, then what it covers is durable
    /// (unless the power went out meanwhile: then it fails with EIO).
    fn sync(&self, ino: Ino) -> Res<()> {
        if !self.sync_delay.is_zero() {
            std::thread::sleep(self.sync_delay);
        }
        self.with(|m| m.sync(ino))
    }

    /// Runs `f` on the model unless the power is gone.
    fn with<T>(&self, f: impl FnOnce(&mut Model) -> Result<T, i32>) -> Res<T> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.dead {
            return Err(Errno::EIO);
        }
        f(&mut s.model).map_err(errno)
    }

    fn attr(&self, model: &Model, ino: Ino) -> Result<FileAttr, i32> {
        let (kind, size, perm, nlink) = if ino == CONTROL_INO {
            (FileType::RegularFile, 0, 0o600, 1)
        } else {
            match model.node(ino)? {
                Node::File(f) => (FileType::RegularFile, f.data.len() as u64, 0o644, 1),
                Node::Dir(_) => (FileType::Directory, 0, 0o755, 2),
            }
        };
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: self.started,
            mtime: self.started,
            ctime: self.started,
            crtime: self.started,
            kind,
            perm,
            nlink,
            // SAFETY: getuid/getgid only read the process's credentials.
            uid: unsafe { libc::getuid() },
            gid: unsafe { libc::getgid() },
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    fn entry(&self, reply: ReplyEntry, r: Res<Ino>) {
        let attr = r.and_then(|ino| self.attr_of(ino));
        match attr {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    /// A command written to the control file.
    fn control(&self, data: &[u8]) -> Res<()> {
        let cmd = control::parse(data).map_err(|why| {
            eprintln!("faultfs: bad control command: {why}");
            Errno::EINVAL
        })?;
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.dead {
            return Err(Errno::EIO);
        }
        match cmd {
            Command::PowerLoss(loss) => self.lose_power(&mut s, loss),
            Command::AtDirSync(n) => {
                s.armed_dir_syncs = Some(n);
                Ok(())
            }
        }
    }

    /// The power goes out: the model keeps what `loss` says, the backing dir
    /// gets it, and every later request fails.
    fn lose_power(&self, s: &mut State, loss: Loss) -> Res<()> {
        let report = s.model.power_loss(loss);
        s.dead = true;
        eprintln!("faultfs: POWER LOSS ({loss:?}): {report:?}; every request fails (EIO) until a remount");
        disk::save(&s.model, &self.backing).map_err(|e| {
            eprintln!(
                "faultfs: cannot write the backing dir {}: {e}",
                self.backing.display()
            );
            Errno::EIO
        })
    }

    /// A directory fsync, unless an armed power loss strikes before it counts.
    fn sync_dir(&self, ino: Ino) -> Res<()> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = s.armed_dir_syncs.filter(|_| !s.dead) {
            s.armed_dir_syncs = n.checked_sub(1).filter(|&left| left > 0);
            if n <= 1 {
                eprintln!("faultfs: the armed power loss strikes at a directory fsync");
                self.lose_power(&mut s, Loss::All)?;
                return Err(Errno::EIO);
            }
        }
        drop(s);
        self.sync(ino)
    }

    /// The attributes of `ino`; the control file's even after a power loss.
    fn attr_of(&self, ino: Ino) -> Res<FileAttr> {
        if ino == CONTROL_INO {
            let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            return self.attr(&s.model, ino).map_err(errno);
        }
        self.with(|m| self.attr(m, ino))
    }

    fn status(&self) -> String {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (changes, dirs) = s.model.unsynced();
        let armed = s.armed_dir_syncs.unwrap_or(0);
        format!(
            "dead={} unsynced_changes={changes} unsynced_dirs={dirs} armed_dir_syncs={armed}\n",
            s.dead
        )
    }
}

fn name_of(name: &OsStr) -> Res<&str> {
    name.to_str().ok_or(Errno::EINVAL)
}

fn empty(reply: ReplyEmpty, r: Res<()>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

impl Filesystem for FaultFs {
    fn destroy(&mut self) {
        let s = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if s.dead {
            return;
        }
        // A clean unmount: the OS writes back everything it holds.
        s.model.sync_all();
        if let Err(e) = disk::save(&s.model, &self.backing) {
            eprintln!(
                "faultfs: cannot write the backing dir {}: {e}",
                self.backing.display()
            );
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent.0 == ROOT && name == CONTROL_NAME {
            return self.entry(reply, Ok(CONTROL_INO));
        }
        let r = name_of(name).and_then(|n| self.with(|m| m.lookup(parent.0, n)));
        self.entry(reply, r)
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr_of(ino.0) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let r = self.with(|m| {
            if let Some(len) = size.filter(|_| ino.0 != CONTROL_INO) {
                m.set_len(ino.0, len)?;
            }
            self.attr(m, ino.0)
        });
        match r {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            return reply.error(Errno::EPERM);
        }
        let r = name_of(name).and_then(|n| self.with(|m| m.create_file(parent.0, n)));
        self.entry(reply, r)
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let r = name_of(name).and_then(|n| self.with(|m| m.mkdir(parent.0, n)));
        self.entry(reply, r)
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(
            reply,
            name_of(name).and_then(|n| self.with(|m| m.unlink(parent.0, n))),
        )
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(
            reply,
            name_of(name).and_then(|n| self.with(|m| m.rmdir(parent.0, n))),
        )
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let r = name_of(name).and_then(|from| {
            let to = name_of(newname)?;
            self.with(|m| m.rename(parent.0, from, newparent.0, to))
        });
        empty(reply, r)
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let r = if ino.0 == CONTROL_INO {
            Ok(())
        } else {
            self.with(|m| m.node(ino.0).map(|_| ()))
        };
        match r {
            // Direct I/O: reads always ask the model, never a stale page cache.
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        if ino.0 == CONTROL_INO {
            let status = self.status().into_bytes();
            let start = usize::try_from(offset).unwrap_or(usize::MAX).min(status.len());
            return reply.data(&status[start..]);
        }
        match self.with(|m| m.read(ino.0, offset, size as usize).map(<[u8]>::to_vec)) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let r = if ino.0 == CONTROL_INO {
            self.control(data)
        } else {
            self.with(|m| m.write(ino.0, offset, data))
        };
        match r {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        if ino.0 == CONTROL_INO {
            return reply.ok();
        }
        empty(reply, self.sync(ino.0))
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.with(|m| m.entries(ino.0).map(|_| ())) {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let listing = self.with(|m| {
            let mut all = vec![(ino.0, FileType::Directory, ".".to_owned())];
            all.push((ROOT, FileType::Directory, "..".to_owned()));
            for (name, &child) in m.entries(ino.0)? {
                let kind = match m.node(child)? {
                    Node::Dir(_) => FileType::Directory,
                    Node::File(_) => FileType::RegularFile,
                };
                all.push((child, kind, name.clone()));
            }
            Ok(all)
        });
        match listing {
            Ok(all) => {
                for (i, (child, kind, name)) in all.into_iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(child), i as u64 + 1, kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        empty(reply, self.sync_dir(ino.0))
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let r = name_of(name).and_then(|n| {
            self.with(|m| {
                let ino = match m.create_file(parent.0, n) {
                    Err(libc::EEXIST) if flags & libc::O_EXCL == 0 => m.lookup(parent.0, n)?,
                    other => other?,
                };
                if flags & libc::O_TRUNC != 0 {
                    m.set_len(ino, 0)?;
                }
                self.attr(m, ino)
            })
        });
        match r {
            Ok(a) => reply.created(
                &TTL,
                &a,
                Generation(0),
                FileHandle(0),
                FopenFlags::FOPEN_DIRECT_IO,
            ),
            Err(e) => reply.error(e),
        }
    }
}
