//! storage-bench: what it costs, on this machine's disk, to make the
//! bank-server's op records durable with its own journal, with SQLite (WAL,
//! `synchronous=FULL`) and with redb, for groups of G records per sync and T
//! committing threads; and how long each takes to recover 1M records after a
//! crash. Issue 9 asked for the storage to be chosen by measurement: this is
//! the measurement (`bench/storage.sh`, written up in `bench/RESULTS.md`).

mod cell;
mod engine;
mod journal;
mod kind;
mod recovery;
mod redb_engine;
mod report;
mod sqlite;
mod workload;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use cell::Spec;
use kind::Kind;
use report::Cell;

/// Seconds each run of a cell lasts.
const DEFAULT_SECONDS: f64 = 0.8;
/// Runs of each cell (the best is reported, the spread with it).
const DEFAULT_REPS: usize = 3;
/// Records written before the recovery is timed.
const DEFAULT_RECOVERY_RECORDS: u64 = 1_000_000;
/// Timed recoveries of each engine.
const RECOVERY_REPS: usize = 2;

const USAGE: &str = "usage: storage-bench [--seconds S] [--reps N] [--groups 1,8,64,128] \
[--threads 1,8] [--engines journal,journal-prezero,sqlite,redb] [--recovery-records N (0: skip)] [--dir DIR] [--json PATH]";

/// The command line.
struct Args {
    seconds: f64,
    reps: usize,
    groups: Vec<usize>,
    threads: Vec<usize>,
    engines: Vec<Kind>,
    recovery_records: u64,
    dir: PathBuf,
    json: PathBuf,
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let result = match argv.first().map(String::as_str) {
        Some("populate") => populate(&argv[1..]),
        _ => parse(&argv).and_then(|a| bench(&a)),
    };
    if let Err(e) = result {
        eprintln!("storage-bench: {e}");
        std::process::exit(2);
    }
}

/// `populate ENGINE DIR N`: the crashing child of a recovery measurement.
fn populate(argv: &[String]) -> Result<(), String> {
    let [kind, dir, n] = argv else {
        return Err("usage: storage-bench populate ENGINE DIR N".into());
    };
    let n = n.parse().map_err(|e| format!("{n}: {e}"))?;
    recovery::populate(Kind::parse(kind)?, Path::new(dir), n)
}

fn parse(argv: &[String]) -> Result<Args, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut a = Args {
        seconds: DEFAULT_SECONDS,
        reps: DEFAULT_REPS,
        groups: vec![1, 8, 64, 128],
        threads: vec![1, 8],
        engines: Kind::ALL.to_vec(),
        recovery_records: DEFAULT_RECOVERY_RECORDS,
        dir: root.join("target/bench-data"),
        json: root.join("../results/storage.json"),
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--seconds" => a.seconds = value.parse().map_err(|e| bad(&e))?,
            "--reps" => a.reps = value.parse().map_err(|e| bad(&e))?,
            "--groups" => a.groups = list(value).map_err(|e| bad(&e))?,
            "--threads" => a.threads = list(value).map_err(|e| bad(&e))?,
            "--engines" => a.engines = value.split(',').map(Kind::parse).collect::<Result<_, _>>()?,
            "--recovery-records" => a.recovery_records = value.parse().map_err(|e| bad(&e))?,
            "--dir" => a.dir = PathBuf::from(value),
            "--json" => a.json = PathBuf::from(value),
            _ => return Err(USAGE.into()),
        }
    }
    Ok(a)
}

fn list(value: &str) -> Result<Vec<usize>, std::num::ParseIntError> {
    value.split(',').map(str::parse).collect()
}

/// Every cell, in order: serial only with one thread (grouping has nothing to merge).
fn specs(a: &Args) -> Vec<Spec> {
    let mut out = Vec::new();
    for &threads in &a.threads {
        for &group in &a.groups {
            for &kind in &a.engines {
                for grouped in [false, true] {
                    if grouped && threads == 1 {
                        continue;
                    }
                    out.push(Spec {
                        kind,
                        grouped,
                        group,
                        threads,
                    });
                }
            }
        }
    }
    out
}

fn bench(a: &Args) -> Result<(), String> {
    let setup = setup(a);
    eprintln!("{}", serde_json::to_string_pretty(&setup).unwrap_or_default());
    let specs = specs(a);
    let mut cells: Vec<Cell> = specs
        .iter()
        .map(|&spec| Cell {
            spec,
            runs: Vec::new(),
        })
        .collect();
    let duration = Duration::from_secs_f64(a.seconds);
    let data = a.dir.join("cell");
    // Rep-major: a burst of load from elsewhere hits one run of many cells,
    // not every run of one cell.
    for rep in 0..a.reps {
        eprintln!(
            "run {} of {}: {} cells of {:.1} s",
            rep + 1,
            a.reps,
            cells.len(),
            a.seconds
        );
        for c in cells.iter_mut() {
            c.runs.push(cell::run(c.spec, &data, duration)?);
        }
    }
    cell::fresh_dir(&data)?;
    report::print_cells(&cells);
    let mut recoveries = Vec::new();
    if a.recovery_records > 0 {
        for &kind in &a.engines {
            eprintln!("recovery: {} records of {}", a.recovery_records, kind.name());
            recoveries.push(recovery::measure(
                kind,
                a.recovery_records,
                &a.dir,
                RECOVERY_REPS,
            )?);
        }
        report::print_recoveries(&recoveries);
    }
    let _ = std::fs::remove_dir_all(&a.dir);
    write_json(&a.json, &report::to_json(setup, &cells, &recoveries))
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())? + "\n";
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// What was measured where: parameters, filesystem, load, versions.
fn setup(a: &Args) -> serde_json::Value {
    let _ = std::fs::create_dir_all(&a.dir);
    let dir = a.dir.to_string_lossy().to_string();
    json!({
        "seconds_per_run": a.seconds, "runs_per_cell": a.reps,
        "groups": a.groups, "threads": a.threads,
        "record_bytes_framed": 106, "accounts": workload::ACCOUNTS,
        "recovery_records": a.recovery_records, "populate_group": recovery::POPULATE_GROUP,
        "filesystem": shell("findmnt", &["-n", "-o", "FSTYPE,SOURCE,OPTIONS", "-T", &dir]),
        "kernel": shell("uname", &["-r"]),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "loadavg_at_start": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
        "sqlite": rusqlite::version(),
        "redb": "4.6.0",
        "started_at": shell("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
    })
}

fn shell(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
