//! `stress-client check`: judges history files offline. Reads every file
//! (one run, distinct processes), merges them onto one time line, runs the
//! same checker as a live run, prints the same verdict section and exits
//! with the same codes. With `--target` it settles the in-doubt ops and
//! reads the final balances itself, after every process has finished
//! (`check_target`). It exits: 0 passed, 1 failed, 3 inconclusive, 2 when a file
//! cannot be read, the files come from different runs, or the usage is wrong.

use std::path::{Path, PathBuf};

use std::time::Instant;

use bank_checker::Verdict;

use crate::check_target;
use crate::cli::CheckArgs;
use crate::history::{self, merge, Parsed};
use crate::report::{html, human, Consistency};
use crate::run::Exit;
use crate::settle::Settlement;

/// Runs `check`; prints the verdict (or why there is none) and returns the exit code.
pub fn run(args: &CheckArgs) -> Exit {
    match judge(args) {
        Ok(c) => {
            let mut out = String::new();
            human::verdict(&mut out, &c);
            print!("{out}");
            exit_for(c.verdict)
        }
        Err(e) => {
            eprintln!("stress-client check: {e}");
            Exit::Failure
        }
    }
}

/// The exit code of a verdict.
pub fn exit_for(v: Verdict) -> Exit {
    match v {
        Verdict::Passed => Exit::Passed,
        Verdict::Failed => Exit::Violation,
        Verdict::Inconclusive => Exit::Inconclusive,
    }
}

/// Reads, merges and checks; writes `--json` and `--html`.
pub fn judge(args: &CheckArgs) -> Result<Consistency, String> {
    let (started, cpu_started) = (Instant::now(), process_cpu_s());
    let files = read_all(&args.paths)?;
    let (read_s, read_cpu_s) = (started.elapsed().as_secs_f64(), process_cpu_s());
    let summaries: Vec<serde_json::Value> = files.iter().map(|(n, p)| file_json(n, p)).collect();
    let mut merged = merge::merge(files, args.max_clock_skew)?;
    let (merged_s, merged_cpu_s) = (started.elapsed().as_secs_f64(), process_cpu_s());
    let settled = match args.target.is_empty() {
        true => None,
        false => Some(check_target::ask(args, &mut merged)?),
    };
    if let Some(s) = &settled {
        println!("{}", settled_line(s));
    }
    let (checking, checking_cpu_s) = (Instant::now(), process_cpu_s());
    let consistency = Consistency::from(bank_checker::check(&merged.history));
    let check_s = checking.elapsed().as_secs_f64();
    let check_cpu_s = process_cpu_s() - checking_cpu_s;
    drop(merged);
    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "consistency": &consistency,
            "histories": summaries,
            "max_clock_skew_s": args.max_clock_skew.as_secs_f64(),
            // `--target` only: the in-doubt ops asked about (live run's words).
            "settled": settled.map(|s| serde_json::json!({
                "indeterminate": s.indeterminate,
                "resolved": s.resolved,
                "resolved_applied": s.resolved_applied,
                "unresolved": s.indeterminate - s.resolved,
            })),
            // Where the time goes (P14 says how much is parsing).
            "timing_s": { "read": read_s, "merge": merged_s - read_s, "check": check_s },
            // The same phases in CPU time of the whole process (user + system):
            // steadier than wall time on a shared machine.
            "cpu_s": {
                "read": read_cpu_s - cpu_started,
                "merge": merged_cpu_s - read_cpu_s,
                "check": check_cpu_s,
            },
        });
        let text =
            serde_json::to_string_pretty(&doc).map_err(|e| format!("cannot encode the report: {e}"))?;
        write(path, &text)?;
    }
    if let Some(path) = &args.html {
        write(path, &page(&consistency, &args.paths))?;
    }
    Ok(consistency)
}

/// CPU time (user + system) this process has used so far, in seconds.
fn process_cpu_s() -> f64 {
    // SAFETY: getrusage only writes the struct it is given, which is plain
    // data and zeroed; RUSAGE_SELF is always valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// What settling the in-doubt ops gave, in the live report's words.
fn settled_line(s: &Settlement) -> String {
    format!(
        "unknown outcome {} with a request id (resolved by GetOperation: {}, of which {} had taken effect; unresolved: {})",
        s.indeterminate,
        s.resolved,
        s.resolved_applied,
        s.indeterminate - s.resolved
    )
}

/// Reads every file; all must belong to one run, each to its own process.
fn read_all(paths: &[PathBuf]) -> Result<Vec<(String, Parsed)>, String> {
    let mut files: Vec<(String, Parsed)> = Vec::with_capacity(paths.len());
    for (path, parsed) in paths.iter().zip(read_parallel(paths)) {
        let parsed = parsed?;
        let name = path.display().to_string();
        if let Some((first, p)) = files.first() {
            if p.header.run_id != parsed.header.run_id {
                return Err(format!(
                    "mixed runs: {first} is run {}, {name} is run {}",
                    p.header.run_id, parsed.header.run_id
                ));
            }
        }
        let same_process = files.iter().find(|(_, p)| same_process(p, &parsed));
        if let Some((other, _)) = same_process {
            return Err(format!(
                "{other} and {name} are both process {} of run {}",
                parsed.header.process_id, parsed.header.run_id
            ));
        }
        files.push((name, parsed));
    }
    Ok(files)
}

/// Parses the files at once, one thread each (parsing is most of a big
/// check's time: P14), at most `READ_THREADS_MAX` at a time.
fn read_parallel(paths: &[PathBuf]) -> Vec<Result<Parsed, String>> {
    let mut out = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(READ_THREADS_MAX) {
        std::thread::scope(|s| {
            let handles: Vec<_> = chunk.iter().map(|p| s.spawn(move || history::read(p))).collect();
            for (h, p) in handles.into_iter().zip(chunk) {
                let panicked = || Err(format!("{}: the reader thread panicked", p.display()));
                out.push(h.join().unwrap_or_else(|_| panicked()));
            }
        });
    }
    out
}

/// Files parsed at once by `check`.
const READ_THREADS_MAX: usize = 8;

/// Two loads of one process (a setup history is no load: it may share an id).
fn same_process(a: &Parsed, b: &Parsed) -> bool {
    a.header.process_id == b.header.process_id && a.header.role != "setup" && b.header.role != "setup"
}

fn file_json(name: &str, p: &Parsed) -> serde_json::Value {
    serde_json::json!({
        "path": name,
        "run_id": p.header.run_id,
        "process_id": p.header.process_id,
        "role": p.header.role,
        "accounts": p.end.accounts,
        "ops": p.end.ops,
        "reads": p.end.reads,
        "duplicates": p.end.duplicates,
    })
}

fn page(c: &Consistency, paths: &[PathBuf]) -> String {
    let mut body = String::new();
    html::violations(&mut body, c);
    let files: Vec<String> = paths
        .iter()
        .map(|p| crate::report::svg::escape(&p.display().to_string()))
        .collect();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>stress-client check</title></head>\
         <body><h1>stress-client check: {}</h1><p>Histories: {}</p>{body}</body></html>\n",
        c.verdict.as_str(),
        files.join(", ")
    )
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
