//! The `stress-client` binary: parse flags, set up tracing, run (or merge
//! interval logs, compare two reports, or run the conformance suite), print
//! the report, exit 0 (passed),
//! 1 (violation), 2 (failure) or 3 (inconclusive).

use std::process::ExitCode;

use std::path::Path;

use stress_client::cli::{Cli, Command};
use stress_client::report::{compare, human, latency};
use stress_client::run::{execute, exit_for, Exit};

/// mimalloc: the load generator shares the machine's cores with the server,
/// so its cost per op is the server's loss (see bench/); ~10% less than glibc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::try_parse_checked(std::env::args_os()).unwrap_or_else(|e| e.exit());
    bank_server::observe::logging::init("warn");
    let exit = match cli.command {
        Some(Command::Merge { logs }) => merge(&logs),
        Some(Command::Compare { a, b, fail_if_slower }) => compare_reports(&a, &b, fail_if_slower),
        Some(Command::Conformance(args)) => stress_client::conformance::run(&args),
        Some(Command::Check(args)) => stress_client::check::run(&args),
        Some(Command::Setup(args)) => stress_client::history::setup::run(&args),
        None => run(&cli.run),
    };
    ExitCode::from(exit as u8)
}

fn run(args: &stress_client::cli::RunArgs) -> Exit {
    match execute(args) {
        Ok(summary) => {
            if !args.quiet {
                print!(
                    "{}",
                    human::render(&summary, args.rate.is_some() || args.stages.is_some())
                );
            }
            let exit = exit_for(&summary);
            if exit == Exit::Failure {
                eprintln!("stress-client: the run completed no operation, so there is nothing to check");
            }
            exit
        }
        Err(e) => {
            eprintln!("stress-client: {e}");
            Exit::Failure
        }
    }
}

fn merge(logs: &[std::path::PathBuf]) -> Exit {
    match stress_client::histlog::merge(logs) {
        Ok((h, intervals)) => {
            let l = latency(&h);
            println!(
                "merged {intervals} intervals from {} log(s), {} samples (us):",
                logs.len(),
                l.count
            );
            println!(
                "  p50 {}  p90 {}  p99 {}  p99.9 {}  p99.99 {}  max {}  mean {:.1}",
                l.p50, l.p90, l.p99, l.p999, l.p9999, l.max, l.mean
            );
            Exit::Passed
        }
        Err(e) => {
            eprintln!("stress-client merge: {e}");
            Exit::Failure
        }
    }
}

/// `compare`: 0 when B is within the gate (or there is none), 1 when it is
/// slower, 2 when a report cannot be read.
fn compare_reports(a: &Path, b: &Path, fail_if_slower: Option<f64>) -> Exit {
    let loaded =
        compare::check_gate(fail_if_slower).and_then(|()| Ok((compare::load(a)?, compare::load(b)?)));
    let (run_a, run_b) = match loaded {
        Ok(runs) => runs,
        Err(e) => {
            eprintln!("stress-client compare: {e}");
            return Exit::Failure;
        }
    };
    println!("A = {}\nB = {}", a.display(), b.display());
    let c = compare::compare(&run_a, &run_b, fail_if_slower);
    print!("{}", c.table);
    if c.regressions.is_empty() {
        return Exit::Passed;
    }
    for r in &c.regressions {
        println!("SLOWER: {r}");
    }
    Exit::Violation
}
