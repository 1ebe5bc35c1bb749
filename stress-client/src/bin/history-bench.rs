//! Writes the input of bench case P14: a correct synthetic run of
//! `--ops-per-process` × `--processes` ops (transfers, reads, duplicates, some
//! of unknown outcome) split over the processes, one history file each, plus
//! the run's accounts. `stress-client check DIR/*.jsonl --json F` is then
//! timed on them (its `timing_s` says how much is parsing).
//!
//! history-bench DIR [--ops-per-process N] [--processes P] [--accounts A] [--zst]

use std::path::PathBuf;

use bank_checker::synth;
use stress_client::history::split::split;
use stress_client::history::{write, Anchor, Meta};

/// The largest run it writes: the checker numbers ops in 32 bits.
const OPS_MAX: u64 = 1 << 31;

fn main() {
    if let Err(e) = run() {
        eprintln!("history-bench: {e}");
        std::process::exit(2);
    }
}

/// The synthetic ledger takes a turn every 100 ns; × 100 makes it 10 µs,
/// 100k ops/s, what one server serves: against a 10 ms clock skew the
/// widened intervals then overlap as they would in a real run.
const TIME_SCALE: u64 = 100;

fn slow_down(h: &mut bank_checker::History) {
    h.map_times(|t| t.saturating_mul(TIME_SCALE));
}

fn flag(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} takes a number")),
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(
        args.first()
            .ok_or("usage: history-bench DIR [--ops-per-process N] [--processes P]")?,
    );
    let per = flag(&args, "--ops-per-process", 1_000_000)?;
    let processes = flag(&args, "--processes", 3)?.clamp(1, 64);
    let accounts = flag(&args, "--accounts", 1_000)?.clamp(1, 1 << 20);
    let total = per
        .checked_mul(processes)
        .filter(|&t| t <= OPS_MAX)
        .ok_or("too many ops")?;
    let ext = if args.iter().any(|a| a == "--zst") {
        "jsonl.zst"
    } else {
        "jsonl"
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut h = synth::random_history(1, total as usize, accounts as u32);
    slow_down(&mut h);
    for (p, part) in split(&h, processes as usize).into_iter().enumerate() {
        // One machine, one clock: each process's anchor is the same instant.
        let anchor = Anchor {
            mono_ns: 0,
            wall_unix_ns: 1_700_000_000_000_000_000,
        };
        let meta = Meta {
            run_id: "p14".into(),
            process_id: p as u32,
            role: "attached".into(),
            start_anchor: anchor,
            end_anchor: anchor,
        };
        let path = dir.join(format!("h{p}.{ext}"));
        write(&path, &part, &[], &meta)?;
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!("{}: {} ops, {} bytes", path.display(), part.ops.len(), bytes);
    }
    Ok(())
}
