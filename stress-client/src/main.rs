//! The `stress-client` binary: parse flags, set up tracing, run (or merge
//! interval logs, compare two reports, or run the conformance suite), print
//! the report, exit with the code `exit::decide` picks: 0 (passed),
//! 1 (violation), 2 (failure), 3 (inconclusive) or 4 (a --threshold crossed).

use std::process::ExitCode;

use std::path::Path;

use stress_client::cli::{Cli, Command};
use stress_client::report::units::{duration, us, with_unit};
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
        Some(Command::Compare {
            a,
            b,
            fail_if_slower,
            fail_if_errors_up,
            ignore_verdict,
        }) => {
            let gates = compare::Gates {
                fail_if_slower,
                fail_if_errors_up,
                ignore_verdict,
            };
            compare_reports(&a, &b, gates)
        }
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
            // On stderr too, so a --quiet CI log says which gate failed.
            for t in summary.thresholds.iter().filter(|t| !t.passed) {
                eprintln!(
                    "stress-client: threshold crossed: {} (measured {})",
                    t.expression,
                    with_unit(t.value, t.unit)
                );
            }
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
                "merged {intervals} intervals from {} log(s), {} samples:",
                logs.len(),
                l.count
            );
            println!(
                "  p50 {}  p90 {}  p99 {}  p99.9 {}  p99.99 {}  max {}  mean {}",
                us(l.p50),
                us(l.p90),
                us(l.p99),
                us(l.p999),
                us(l.p9999),
                us(l.max),
                duration(l.mean)
            );
            Exit::Passed
        }
        Err(e) => {
            eprintln!("stress-client merge: {e}");
            Exit::Failure
        }
    }
}

/// `compare`: 0 when B passes every gate, 1 when it fails one (each reason
/// printed), 2 when a report cannot be read or a gate's flag is wrong.
fn compare_reports(a: &Path, b: &Path, gates: compare::Gates) -> Exit {
    let loaded = compare::check_gate(gates.fail_if_slower)
        .and_then(|()| Ok((compare::load(a)?, compare::load(b)?)))
        .and_then(|(x, y)| compare::check_gates(&gates, &x, &y).map(|()| (x, y)));
    let (run_a, run_b) = match loaded {
        Ok(runs) => runs,
        Err(e) => {
            eprintln!("stress-client compare: {e}");
            return Exit::Failure;
        }
    };
    println!("A = {}\nB = {}", a.display(), b.display());
    let c = compare::compare(&run_a, &run_b, gates);
    print!("{}", c.table);
    if c.regressions.is_empty() {
        return Exit::Passed;
    }
    for r in &c.regressions {
        println!("{r}");
    }
    Exit::Violation
}
