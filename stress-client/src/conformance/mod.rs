//! `stress-client conformance`: a deterministic suite of named contract
//! checks for any `bank.v1` server, like h2spec is for HTTP/2. Each check
//! opens its own fresh accounts (under a prefix unique to the run, so it can
//! run against a long-lived server, twice in a row), sends a few calls and
//! compares every answer with what `proto/bank/v1/bank.proto` says. The
//! checks are independent and run concurrently; the report lists each with
//! pass/FAIL and, on failure, the exchange that failed. Exit 0 all passed,
//! 1 some failed, 2 the server could not be reached (or a usage error).
//!
//! One file per group of checks; `ctx` holds what they share.

mod auth;
mod basics;
mod crossing;
mod ctx;
mod expect;
mod fence;
mod idem;
mod invalid;
mod limits;
mod monitor;
mod op;
mod report;
mod stream;
mod transfer;
mod wait;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::StreamExt;

pub use ctx::{Cx, Shared, Step, Stop};
pub use report::{CheckReport, Report};

use crate::cli::ConformanceArgs;
use crate::run::Exit;
use crate::transport::{self, TransportArgs};

/// Checks run at once: enough to finish fast, few enough for a server
/// with a small thread pool (one check alone holds up to 128 calls).
const CONCURRENT_CHECKS: usize = 12;
/// The longest one attempt of a check may take, whatever its calls' deadlines.
const CHECK_BUDGET: Duration = Duration::from_secs(30);
/// Attempts of one check whose attempts fail on retryable statuses.
const ATTEMPTS_MAX: u32 = 8;

/// A check of the suite.
pub struct Check {
    /// Stable id, grouped by prefix (`idem-…`, `fence-…`).
    pub id: &'static str,
    /// What it checks, in one line.
    pub description: &'static str,
    /// The check itself.
    pub run: fn(Cx) -> BoxFuture<'static, Step<()>>,
}

/// Declares a check: `check!("id", "description", async_fn)`.
macro_rules! check {
    ($id:literal, $description:literal, $f:path) => {
        $crate::conformance::Check {
            id: $id,
            description: $description,
            run: |cx| Box::pin($f(cx)),
        }
    };
}
pub(crate) use check;

/// Every check, in report order.
pub fn all_checks() -> Vec<Check> {
    let groups = [
        basics::checks(),
        invalid::checks(),
        idem::checks(),
        fence::checks(),
        transfer::checks(),
        wait::checks(),
        monitor::checks(),
        crossing::checks(),
        stream::checks(),
        limits::checks(),
        auth::checks(),
    ];
    groups.into_iter().flatten().collect()
}

/// Runs the suite as the flags say: prints the table, writes the JSON, and
/// says how the process should exit.
pub fn run(args: &ConformanceArgs) -> Exit {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return usage(&format!("cannot start a runtime: {e}")),
    };
    let shared = match runtime.block_on(connect(args)) {
        Ok(shared) => Arc::new(shared),
        Err(e) => return usage(&e),
    };
    let started = Instant::now();
    let checks: Vec<Check> = all_checks()
        .into_iter()
        .filter(|c| args.only.is_empty() || args.only.iter().any(|p| c.id.starts_with(p.as_str())))
        .collect();
    let results = runtime.block_on(run_checks(shared, checks));
    let report = Report::new(&args.target, results, started.elapsed());
    print!("{}", report.table());
    if let Some(path) = &args.json {
        if let Err(e) = report.write_json(path) {
            return usage(&format!("--json {}: {e}", path.display()));
        }
    }
    report.exit()
}

fn usage(message: &str) -> Exit {
    eprintln!("stress-client conformance: {message}");
    Exit::Failure
}

/// Connects to the target and makes the clients; any failure is exit 2.
async fn connect(args: &ConformanceArgs) -> Result<Shared, String> {
    // The token is not installed: each client below carries its own.
    let installed = TransportArgs {
        tls_ca: args.tls_ca.clone(),
        tls_insecure: args.tls_insecure,
        metadata: args.metadata.clone(),
        ..TransportArgs::default()
    };
    transport::install(&installed)?;
    let channel = crate::setup::connect(std::slice::from_ref(&args.target), 1).await?;
    let channel = channel.into_iter().next().ok_or("no connection")?;
    let token = args.token.as_deref();
    let bank = transport::bank_with_token(channel.clone(), token)?;
    let second = match &args.second_token {
        Some(t) => Some(transport::bank_with_token(channel.clone(), Some(t))?),
        None => None,
    };
    let anonymous = match token {
        Some(_) => Some((
            transport::bank_with_token(channel.clone(), None)?,
            transport::bank_with_token(channel.clone(), Some("conformance-token-nobody-was-given"))?,
        )),
        None => None,
    };
    let shared = Shared {
        bank,
        second,
        anonymous,
        channel,
        run: run_prefix(),
        timeout: args.timeout,
    };
    probe(&shared).await?;
    Ok(shared)
}

/// One GetBalance: a server that does not answer gRPC at all is exit 2, not 50 failures.
async fn probe(shared: &Shared) -> Result<(), String> {
    let mut request = tonic::Request::new(bank::v1::GetBalanceRequest {
        account_id: format!("{}.probe", shared.run),
    });
    request.set_timeout(shared.timeout);
    match shared.bank.clone().get_balance(request).await {
        Err(s) if matches!(s.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded) => {
            Err(format!(
                "the server does not answer gRPC: GetBalance got {:?} ({})",
                s.code(),
                s.message()
            ))
        }
        _ => Ok(()),
    }
}

/// A prefix no earlier run used: `cf` and 12 hex digits of randomness.
fn run_prefix() -> String {
    format!("cf{:012x}", rand::random::<u64>() >> 16)
}

/// Runs `checks` concurrently, each within [`CHECK_BUDGET`]; results in input order.
async fn run_checks(shared: Arc<Shared>, checks: Vec<Check>) -> Vec<CheckReport> {
    let runs = checks.into_iter().enumerate().map(|(i, check)| {
        let shared = Arc::clone(&shared);
        async move { (i, run_one(shared, check).await) }
    });
    let mut results: Vec<(usize, CheckReport)> = futures::stream::iter(runs)
        .buffer_unordered(CONCURRENT_CHECKS)
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Runs `check`; an attempt that failed on a retryable status (see
/// [`ctx::met_retryable`]) is run again from the start on fresh accounts,
/// up to [`ATTEMPTS_MAX`] attempts: a server may shed, fail or answer late
/// any call, and a check that sends one call and judges its answer cannot
/// tell that from a wrong status. A server that answers so every time still
/// fails, with the last attempt's exchange.
async fn run_one(shared: Arc<Shared>, check: Check) -> CheckReport {
    let started = Instant::now();
    let mut attempt = 0;
    let outcome = loop {
        let cx = Cx::new(Arc::clone(&shared), check.id, attempt);
        let outcome = match tokio::time::timeout(CHECK_BUDGET, (check.run)(cx)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Stop::Fail(format!(
                "the check did not finish within {CHECK_BUDGET:?}"
            ))),
        };
        match outcome {
            Err(Stop::Fail(detail)) if ctx::met_retryable(&detail) => {
                attempt += 1;
                if attempt == ATTEMPTS_MAX {
                    break Err(Stop::Fail(format!(
                        "each of {ATTEMPTS_MAX} attempts met a retryable status; the last: {detail}"
                    )));
                }
            }
            outcome => break outcome,
        }
    };
    CheckReport::new(check.id, check.description, outcome, started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_grouped_and_documented() {
        let checks = all_checks();
        assert!(checks.len() >= 40, "{} checks", checks.len());
        let mut ids: Vec<&str> = checks.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), checks.len(), "ids are unique");
        let groups = [
            "rpc-",
            "seq-",
            "invalid-",
            "notfound-",
            "exists-",
            "idem-",
            "fence-",
            "xfer-",
            "wait-",
            "monitor-",
            "stream-",
            "limit-",
            "health-",
            "auth-",
        ];
        let doc = include_str!("../../../docs/conformance.md");
        for c in &checks {
            assert!(
                groups.iter().any(|g| c.id.starts_with(g)),
                "{} has no group",
                c.id
            );
            assert!(!c.description.is_empty() && !c.description.contains('\n'));
            assert!(
                doc.contains(&format!("| `{}` |", c.id)),
                "{} is not in docs/conformance.md",
                c.id
            );
        }
    }
}
