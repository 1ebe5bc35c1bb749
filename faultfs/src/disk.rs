//! The backing directory: what the disk holds while faultfs is not mounted.
//! Loaded whole at mount (everything in it counts as durable), and written
//! back whole at a power loss (the durable state only) or a clean unmount
//! (everything, as the OS would write back). Regular files and directories
//! only: anything else in it is refused at load.

use std::fs;
use std::io;
use std::path::Path;

use crate::model::{Ino, Model, Node, ROOT};

/// Reads `backing` into a fresh model in which everything is durable.
pub fn load(backing: &Path) -> io::Result<Model> {
    let mut model = Model::default();
    load_dir(&mut model, backing, ROOT)?;
    Ok(model)
}

fn load_dir(model: &mut Model, path: &Path, dir: Ino) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(path)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry
            .file_name()
            .into_string()
            .map_err(|n| io::Error::other(format!("{}: a name that is not UTF-8: {n:?}", path.display())))?;
        let kind = entry.file_type()?;
        let node = if kind.is_dir() {
            crate::model::Node::Dir(Default::default())
        } else if kind.is_file() {
            Model::loaded_file(fs::read(entry.path())?)
        } else {
            return Err(io::Error::other(format!(
                "{}: neither a file nor a directory",
                entry.path().display()
            )));
        };
        let ino = model
            .insert_loaded(dir, &name, node)
            .map_err(io::Error::from_raw_os_error)?;
        if kind.is_dir() {
            load_dir(model, &entry.path(), ino)?;
        }
    }
    Ok(())
}

/// Replaces what `backing` holds by the model's visible tree (call after a
/// power loss or `sync_all`, when visible and durable agree).
pub fn save(model: &Model, backing: &Path) -> io::Result<()> {
    for entry in fs::read_dir(backing)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(entry.path())?;
        } else {
            fs::remove_file(entry.path())?;
        }
    }
    save_dir(model, backing, ROOT)?;
    // The backing dir is the "platter": make it survive a real crash too.
    fs::File::open(backing)?.sync_all()
}

fn save_dir(model: &Model, path: &Path, dir: Ino) -> io::Result<()> {
    let entries = model.entries(dir).map_err(io::Error::from_raw_os_error)?;
    for (name, &ino) in entries {
        let target = path.join(name);
        match model.node(ino).map_err(io::Error::from_raw_os_error)? {
            Node::Dir(_) => {
                fs::create_dir(&target)?;
                save_dir(model, &target, ino)?;
            }
            Node::File(f) => fs::write(&target, &f.data)?,
        }
    }
    Ok(())
}
