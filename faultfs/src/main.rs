//! faultfs: a test-only FUSE filesystem that forgets what was not synced
//! when told to "lose power" (see README.md for the model and the control
//! file). Usage: `faultfs BACKING_DIR MOUNT_POINT`; runs until unmounted
//! (`fusermount3 -u MOUNT_POINT` or `umount MOUNT_POINT`).

mod control;
mod disk;
mod fs;
mod model;

use std::path::PathBuf;
use std::process::ExitCode;

use fuser::{Config, MountOption};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [backing, mount] = args.as_slice() else {
        eprintln!("usage: faultfs BACKING_DIR MOUNT_POINT");
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
    let fs = fs::FaultFs::new(model, backing);
    match fuser::mount(fs, mount, &config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faultfs: cannot mount on {mount}: {e}");
            ExitCode::FAILURE
        }
    }
}
