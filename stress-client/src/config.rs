//! `--config FILE`: run flags from a TOML file, one key per flag, named as
//! the long flag without its dashes (`connections = 4`, `server-delay =
//! "0s"`, `threshold = ["p99 < 5ms"]`, `quiet = true`). The file is turned
//! into command-line arguments placed before the real ones, so clap parses
//! and checks every flag the same way with no per-flag code; a flag given
//! on the command line drops the file's value for it, so the command line
//! wins (lists too: they are replaced, not extended).

use std::ffi::OsString;
use std::path::Path;

use toml_edit::{DocumentMut, Item, Value};

/// The largest config file read.
pub const CONFIG_BYTES_MAX: u64 = 1 << 20;

/// Flags a config file cannot set.
const NOT_IN_A_FILE: [&str; 3] = ["config", "help", "version"];

/// Reads `path` and turns it into arguments for `command`'s flags, skipping
/// those for which `on_command_line(arg id)` holds.
pub fn args_from_file(
    path: &Path,
    command: &clap::Command,
    on_command_line: impl Fn(&str) -> bool,
) -> Result<Vec<OsString>, String> {
    let name = path.display();
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read the config {name}: {e}"))?
        .len();
    if size > CONFIG_BYTES_MAX {
        return Err(format!(
            "the config {name} is {size} bytes, more than {CONFIG_BYTES_MAX}"
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the config {name}: {e}"))?;
    to_args(&text, command, on_command_line).map_err(|e| format!("config {name}: {e}"))
}

/// The arguments a config text stands for (see the module doc).
pub fn to_args(
    text: &str,
    command: &clap::Command,
    on_command_line: impl Fn(&str) -> bool,
) -> Result<Vec<OsString>, String> {
    let doc: DocumentMut = text.parse().map_err(|e| format!("not TOML: {e}"))?;
    let mut args = Vec::new();
    for (key, item) in doc.iter() {
        let arg = flag(command, key)?;
        if on_command_line(arg.get_id().as_str()) {
            continue;
        }
        let takes_value = arg.get_action().takes_values();
        for value in values(key, item)? {
            match (value, takes_value) {
                (Scalar::Bool(true), false) => args.push(format!("--{key}").into()),
                (Scalar::Bool(false), false) => {}
                (Scalar::Text(_), false) => return Err(format!("{key} is a switch: give true or false")),
                (Scalar::Bool(b), true) => args.push(format!("--{key}={b}").into()),
                (Scalar::Text(v), true) => args.push(format!("--{key}={v}").into()),
            }
        }
    }
    Ok(args)
}

/// The flag a key names, or an error naming the key.
fn flag<'c>(command: &'c clap::Command, key: &str) -> Result<&'c clap::Arg, String> {
    let by_long = |long: &str| {
        command
            .get_arguments()
            .find(|a| a.get_long() == Some(long) && !NOT_IN_A_FILE.contains(&long))
    };
    if let Some(arg) = by_long(key) {
        return Ok(arg);
    }
    let kebab = key.replace('_', "-");
    let hint = match by_long(&kebab) {
        Some(_) if kebab != key => format!(" (did you mean {kebab:?}?)"),
        _ => String::new(),
    };
    Err(format!("unknown key {key:?}: not a stress-client run flag{hint}"))
}

/// One value of a key, as text for the command line.
enum Scalar {
    Bool(bool),
    Text(String),
}

/// The values of a key: one, or each of an array's.
fn values(key: &str, item: &Item) -> Result<Vec<Scalar>, String> {
    match item {
        Item::Value(Value::Array(array)) => array.iter().map(|v| scalar(key, v)).collect(),
        Item::Value(v) => Ok(vec![scalar(key, v)?]),
        _ => Err(format!("{key} must be a string, number, boolean or array")),
    }
}

fn scalar(key: &str, v: &Value) -> Result<Scalar, String> {
    Ok(match v {
        Value::String(s) => Scalar::Text(s.value().clone()),
        Value::Integer(i) => Scalar::Text(i.value().to_string()),
        Value::Float(f) => Scalar::Text(f.value().to_string()),
        Value::Boolean(b) => Scalar::Bool(*b.value()),
        _ => {
            return Err(format!(
                "{key} must be a string, number, boolean or array of them"
            ))
        }
    })
}
