//! faultfs: a test-only FUSE filesystem that forgets what was not synced
//! when told to "lose power" (see README.md for the model and the control
//! file). Usage: `faultfs [--sync-delay-ms N] BACKING_DIR MOUNT_POINT`;
//! runs until unmounted (`fusermount3 -u MOUNT_POINT` or `umount MOUNT_POINT`).
//! `--sync-delay-ms` makes every fsync take N ms (a slow disk; default 0),
//! served by several threads so that a power loss can land mid-sync.

mod control;
mod disk;
mod fs;
mod model;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use fuser::{Config, MountOption};

/// Threads serving FUSE requests.
const SERVING_THREADS: usize = 4;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (delay_ms, rest) = match args.as_slice() {
        [flag, n, rest @ ..] if flag == "--sync-delay-ms" => (n.parse::<u64>().ok(), rest),
        rest => (Some(0), rest),
    };
    let (Some(delay_ms), [backing, mount]) = (delay_ms, rest) else {
        eprintln!("usage: faultfs [--sync-delay-ms N] BACKING_DIR MOUNT_POINT");
        return ExitCode::from(2);
    };
    let backing = PathBuf::from(backing);
    let model = match disk::load(&backing) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("faultfs: cannot load {}: {e}", backing.display());
            return ExitCode::from(2);
        }
    };
    let mut config = Config::default();
    config.mount_options = vec![MountOption::FSName("faultfs".into()), MountOption::RW];
    // Several threads: a control write is served while a slow sync sleeps.
    config.n_threads = Some(SERVING_THREADS);
    let fs = fs::FaultFs::new(model, backing, Duration::from_millis(delay_ms));
    match fuser::mount(fs, mount, &config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultfs: cannot mount on {mount}: {e}");
            ExitCode::FAILURE
        }
    }
}
