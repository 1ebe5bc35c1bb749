//! The stress-client command line: the run flags (load shape, workload,
//! outputs, embedded server) and the subcommands: `merge` for interval logs,
//! `compare` for two reports, `conformance` for the contract suite.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use bank_server::backend::ledger::InjectedBug;
use bank_server::cli::parse_duration;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::stages::{parse_stages, Plan};
use crate::workload::Amounts;

/// Load-test a bank.v1 server and check that it kept every account correct.
///
/// Without --target, a bank server is started in-process on 127.0.0.1:0.
/// Exit codes: 0 run completed and the consistency check passed;
/// 1 consistency violation; 2 usage, connection or setup failure;
/// 3 inconclusive (the run completed, but what it observed cannot decide
/// the check, e.g. the server stopped answering mid-run); 4 a --threshold
/// was crossed. When several apply: 2 > 1 > 4 > 3 > 0.
#[derive(Debug, Parser)]
#[command(name = "stress-client", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// The largest values the run flags accept: far above what one machine
/// drives, and small enough that every index fits its 32-bit field.
pub const CONNECTIONS_MAX: usize = 10_000;
pub const STREAMS_MAX: usize = 1_000_000;
pub const PIPELINE_MAX: usize = 10_000;
pub const ACCOUNTS_MAX: usize = 100_000_000;

/// Subcommands besides the default run.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Merge HdrHistogram interval logs (from --histogram-log) and print the
    /// combined percentiles.
    Merge {
        /// Interval log files to merge.
        #[arg(required = true)]
        logs: Vec<PathBuf>,
    },
    /// Compare two --json reports side by side (B against A, with ratios).
    /// Exit 1 when B fails a gate (a worse verdict than A's, or a flag
    /// below), saying why; 2 when a report cannot be read.
    Compare {
        /// The baseline report.
        a: PathBuf,
        /// The report compared with it.
        b: PathBuf,
        /// Exit 1 when B's throughput is lower, or its p99 higher, than A's
        /// by more than PCT percent (a regression gate for CI).
        #[arg(long, value_name = "PCT")]
        fail_if_slower: Option<f64>,
        /// Exit 1 when B's error rate (errors / ops) exceeds A's by more
        /// than PCT percentage points.
        #[arg(long, value_name = "PCT")]
        fail_if_errors_up: Option<f64>,
        /// Do not exit 1 when B's verdict is worse than A's (passed, then
        /// inconclusive, then failed).
        #[arg(long)]
        ignore_verdict: bool,
    },
    /// Check a bank.v1 server against the contract: a deterministic suite of
    /// named checks (every RPC and status, idempotency, fencing, waiting,
    /// transfers, streams, limits, ownership). Exit 0 all passed, 1 some
    /// failed, 2 the server could not be reached. See docs/conformance.md.
    Conformance(ConformanceArgs),
    /// Judge history files (--history, setup) offline: one run, from one or
    /// several processes, merged onto one time line. Exit 0 passed, 1 failed,
    /// 3 inconclusive, 2 unreadable files, mixed runs or usage. See docs/history.md.
    Check(CheckArgs),
    /// Open the shared accounts of a multi-process run and write them to a
    /// history file for `check`; load processes then run with --attach.
    Setup(SetupArgs),
}

/// The largest `--run-id` of `setup`/`--attach`: it goes into every request
/// id, which the contract bounds at 64 bytes.
pub const RUN_ID_MAX: usize = 24;

/// Checks a run id given on the command line: 1..=RUN_ID_MAX of [A-Za-z0-9_].
pub fn check_run_id(id: &str) -> Result<(), String> {
    let fine = !id.is_empty()
        && id.len() <= RUN_ID_MAX
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    match fine {
        true => Ok(()),
        false => Err(format!(
            "a run id is 1 to {RUN_ID_MAX} of A-Z, a-z, 0-9 and _, got {id:?}"
        )),
    }
}

/// The flags of `setup`.
#[derive(Debug, Clone, Args)]
pub struct SetupArgs {
    /// Server to open the accounts on (repeat for several on one ledger).
    #[arg(long, required = true)]
    pub target: Vec<String>,
    #[command(flatten)]
    pub transport: crate::transport::TransportArgs,
    /// The run's id: the load processes pass it to --attach, and it names the accounts.
    #[arg(long, value_name = "ID")]
    pub run_id: String,
    /// Accounts to open (ids stress-<ID>-0 … stress-<ID>-<N-1>).
    #[arg(long, default_value_t = 1)]
    pub accounts: usize,
    /// Opening balance of every account, in minor units (pass the same to every --attach).
    #[arg(long, default_value_t = 10_000)]
    pub initial_balance: u64,
    /// Write the accounts (ids, opening balances) here, for `check`.
    #[arg(long, value_name = "PATH")]
    pub history: PathBuf,
    /// Deadline of each OpenAccount call.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// The longest `check --target` waits on anything (`--timeout`,
/// `--resolve-timeout`, `--final-reads-timeout`): a day.
pub const CHECK_WAIT_MAX: Duration = Duration::from_secs(24 * 3600);

/// A `check --target` time bound: more than 0, at most [`CHECK_WAIT_MAX`].
fn parse_check_wait(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("must be more than 0 (e.g. 10s)".into());
    }
    if d > CHECK_WAIT_MAX {
        return Err(format!(
            "must be at most {} (24h)",
            humantime::format_duration(CHECK_WAIT_MAX)
        ));
    }
    Ok(d)
}

/// The flags of `check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// History files of one run (.jsonl or .jsonl.zst).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Server to read the accounts' final balances from (after every
    /// process has finished); they replace any final reads in the files.
    #[arg(long)]
    pub target: Vec<String>,
    /// TLS, token and metadata for `--target` (the run's token: the accounts' owner).
    #[command(flatten)]
    pub transport: crate::transport::TransportArgs,
    /// How far apart two processes' clocks may be: real-time order between
    /// processes is used only where the gap exceeds it (within one process
    /// it is exact).
    #[arg(long, default_value = "10ms", value_parser = parse_duration, value_name = "DURATION")]
    pub max_clock_skew: Duration,
    /// Deadline of each call `--target` makes (GetOperation, GetBalance).
    #[arg(long, default_value = "10s", value_parser = parse_check_wait, value_name = "DURATION")]
    pub timeout: Duration,
    /// How long `--target` may spend settling ops in doubt by GetOperation
    /// (an op still unsettled then stays unknown).
    #[arg(long, default_value = "60s", value_parser = parse_check_wait, value_name = "DURATION")]
    pub resolve_timeout: Duration,
    /// How long `--target` may spend reading the accounts' final states (an
    /// account not read by then has no final state).
    #[arg(long, default_value = "120s", value_parser = parse_check_wait, value_name = "DURATION")]
    pub final_reads_timeout: Duration,
    /// Write the verdict as JSON (`consistency`, `histories`) here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the verdict as an HTML page here.
    #[arg(long)]
    pub html: Option<PathBuf>,
}

/// Which defaulted flags were given on the command line (clap's defaults
/// hide it; some combinations are only wrong when a flag was given).
#[derive(Debug, Clone, Copy, Default)]
pub struct Given {
    pub duration: bool,
    pub warmup: bool,
    pub server_delay: bool,
}

impl Given {
    fn from_matches(m: &ArgMatches) -> Given {
        let given = |id: &str| m.value_source(id) == Some(ValueSource::CommandLine);
        Given {
            duration: given("duration"),
            warmup: given("warmup"),
            server_delay: given("server_delay"),
        }
    }
}

impl Cli {
    /// Parses `args` (program name first), noting which defaulted flags were
    /// given. The time-based warmup default applies to `--duration` runs only:
    /// a `--requests` or `--stages` run without `--warmup` measures every op.
    pub fn try_parse_checked<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let matches = with_config(Cli::command().try_get_matches_from(&args)?, &args)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        let run = &mut cli.run;
        run.command_line = redacted(&args);
        run.given = Given::from_matches(&matches);
        if !run.given.warmup && (run.requests.is_some() || run.stages.is_some()) {
            run.warmup = Duration::ZERO;
        }
        Ok(cli)
    }
}

/// Flags whose value is a secret: the report's `command_line` shows `***`.
const SECRET_FLAGS: [&str; 2] = ["--token", "--second-token"];
/// Flags whose `KEY=VALUE` may carry a secret: the report shows `KEY=***`.
const SECRET_VALUE_FLAGS: [&str; 1] = ["--metadata"];

/// The arguments for the report, secrets replaced by `***` (a report is
/// shared; a token in it would be too).
fn redacted(args: &[OsString]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(args.len());
    for arg in args.iter().map(|a| a.to_string_lossy().into_owned()) {
        let previous = out.last().map(String::as_str).unwrap_or("");
        let text = if SECRET_FLAGS.contains(&previous) {
            "***".to_owned()
        } else if SECRET_VALUE_FLAGS.contains(&previous) {
            hide_value(&arg)
        } else if let Some((flag, value)) = arg.split_once('=').filter(|(f, _)| f.starts_with("--")) {
            match (SECRET_FLAGS.contains(&flag), SECRET_VALUE_FLAGS.contains(&flag)) {
                (true, _) => format!("{flag}=***"),
                (_, true) => format!("{flag}={}", hide_value(value)),
                _ => arg,
            }
        } else {
            arg
        };
        out.push(text);
    }
    out
}

/// `KEY=VALUE` as `KEY=***`.
fn hide_value(pair: &str) -> String {
    match pair.split_once('=') {
        Some((key, _)) => format!("{key}=***"),
        None => "***".to_owned(),
    }
}

/// With `--config FILE`, parses again with the file's flags placed before
/// the command line's (which win: the file's value of a flag the command
/// line gives is dropped).
fn with_config(matches: ArgMatches, args: &[OsString]) -> Result<ArgMatches, clap::Error> {
    let Some(path) = matches.get_one::<PathBuf>("config") else {
        return Ok(matches);
    };
    let on_command_line = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let from_file = crate::config::args_from_file(path, &Cli::command(), on_command_line)
        .map_err(|e| Cli::command().error(clap::error::ErrorKind::InvalidValue, e))?;
    let Some((program, rest)) = args.split_first() else {
        return Ok(matches);
    };
    let merged = std::iter::once(program.clone())
        .chain(from_file)
        .chain(rest.iter().cloned());
    Cli::command().try_get_matches_from(merged)
}

/// How requests travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Withdrawals over bidirectional `WithdrawStream` streams (other ops unary).
    Stream,
    /// One unary call per op.
    Unary,
}

/// The flags of a run.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Server to drive (e.g. http://127.0.0.1:50051). Repeat it for several
    /// servers on one ledger: connections are spread over them round-robin and
    /// one verdict covers them all. Without it an embedded server is started
    /// in-process.
    #[arg(long)]
    pub target: Vec<String>,

    /// TLS, token and metadata for `--target` (see `transport`).
    #[command(flatten)]
    pub transport: crate::transport::TransportArgs,

    /// HTTP/2 connections to open.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,

    /// Concurrent streams (workers) in total, spread round-robin over the connections.
    #[arg(long, default_value_t = 64)]
    pub streams: usize,

    /// stream: withdrawals go over WithdrawStream; unary: one call per op.
    #[arg(long, value_enum, default_value_t = Mode::Stream)]
    pub mode: Mode,

    /// Requests in flight per stream (per worker).
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,

    /// How long to send load after the warmup (not with --requests or --stages).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Send exactly this many ops in total instead of running for --duration.
    #[arg(long)]
    pub requests: Option<u64>,

    /// Open-loop stages instead of --rate and --duration: D@RATE holds RATE
    /// ops/s for D, D@A..B ramps from A to B ops/s (e.g. 10s@1000,20s@1000..5000).
    #[arg(long, value_parser = parse_stages, value_name = "D@RATE[,D@RATE...]")]
    pub stages: Option<Plan>,

    /// Time at the start excluded from latency and throughput statistics
    /// (every op still counts in the consistency check). Default 1s for
    /// --duration runs, 0s with --requests or --stages.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Open loop: ops per second in total on a fixed schedule; latency is then
    /// measured from each op's intended send time (coordinated omission corrected).
    #[arg(long)]
    pub rate: Option<f64>,

    /// Fresh accounts to open for this run (ids unique to the run).
    #[arg(long, default_value_t = 1)]
    pub accounts: usize,

    /// Opening balance of every account, in minor units.
    #[arg(long, default_value_t = 10_000)]
    pub initial_balance: u64,

    /// Op amounts: MIN..MAX draws uniformly (inclusive); a list like 70,80 is
    /// dealt round-robin (op n of worker w takes item (w + n) mod len).
    #[arg(long, default_value = "1..100", value_parser = parse_amounts)]
    pub amount: Amounts,

    /// Fraction of ops that are deposits.
    #[arg(long, default_value_t = 0.2)]
    pub deposit_ratio: f64,

    /// Fraction of ops that are transfers (needs --accounts >= 2).
    #[arg(long, default_value_t = 0.1)]
    pub transfer_ratio: f64,

    /// Fraction of withdrawals that wait for funds instead of being denied.
    #[arg(long, default_value_t = 0.0)]
    pub wait_for_funds: f64,

    /// Extra GetBalance calls: after each money op, with this probability, a
    /// read of one of the run's accounts, checked against the history (not
    /// counted in --requests or the throughput).
    #[arg(long, default_value_t = 0.05)]
    pub read_ratio: f64,

    /// Extra sends: this share of money ops is sent a second time under the
    /// same request id (half at once, half after the first answer); both
    /// answers must agree and the op must take effect once.
    #[arg(long, default_value_t = 0.02)]
    pub duplicate_ratio: f64,

    /// Extra calls that break the contract on purpose: after each money op,
    /// with this probability, an amount of 0, an account never opened, or the
    /// request id of an op already answered with another amount. Each must be
    /// refused with the contract's status (INVALID_ARGUMENT, NOT_FOUND or with
    /// --token PERMISSION_DENIED, ALREADY_EXISTS) and change nothing; a wrong
    /// answer is a protocol violation. Counted under `extras` only.
    #[arg(long, default_value_t = 0.01)]
    pub invalid_ratio: f64,

    /// Deadline of each call.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Seed of the op sequence (same seed, same ops per worker).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Write the machine-readable report here.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Write the history the checker judged (every op, read, duplicate, invalid
    /// call, final read) here as JSON Lines, for `stress-client check`
    /// (docs/history.md); a name ending in .zst is written zstd-compressed.
    #[arg(long, value_name = "PATH")]
    pub history: Option<PathBuf>,

    /// Drive load on the accounts `stress-client setup --run-id ID` opened,
    /// without opening any (same --accounts and --initial-balance as setup).
    /// Its own verdict is inconclusive: judge all processes with `check`.
    #[arg(long, value_name = "ID", requires = "process_id")]
    pub attach: Option<String>,

    /// With --attach: this process's number, distinct per process; it goes
    /// into every request id and the seed, so processes never collide.
    #[arg(long, value_name = "K", requires = "attach")]
    pub process_id: Option<u32>,

    /// Write the latency distribution in HdrHistogram .hgrm text format here.
    #[arg(long)]
    pub hgrm: Option<PathBuf>,

    /// Write an HdrHistogram V2 interval log (one histogram per second) here.
    #[arg(long)]
    pub histogram_log: Option<PathBuf>,

    /// Write a self-contained HTML report with charts here.
    #[arg(long)]
    pub html: Option<PathBuf>,

    /// Write one CSV row per second here (time_s,ops,errors,p50_us,p99_us,max_us).
    #[arg(long)]
    pub csv: Option<PathBuf>,

    /// No progress line, no report on stdout (the exit code still tells).
    #[arg(long)]
    pub quiet: bool,

    /// Embedded server: processing delay inside the critical section.
    #[arg(long, default_value = "1ms", value_parser = parse_duration)]
    pub server_delay: Duration,

    /// Embedded server: serve withdrawals WITHOUT the lock (race demo).
    #[arg(long)]
    pub server_unsafe_no_lock: bool,

    /// Embedded server: plant one bug of the zoo (see bank-server --inject-bug).
    #[arg(long, value_enum, value_name = "NAME")]
    pub server_inject_bug: Option<InjectedBug>,

    /// How long to keep asking GetOperation about an op whose outcome is unknown.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub resolve_timeout: Duration,

    /// A CI gate on the run's numbers (repeatable): `p50|p90|p99|p99.9|max <
    /// DURATION` (e.g. 5ms, 250us), `error_rate < PCT%`, `throughput > OPS`.
    /// Any crossed: exit 4 (unless a worse code applies).
    #[arg(long, value_name = "EXPR", value_parser = crate::threshold::parse)]
    pub threshold: Vec<crate::threshold::Threshold>,

    /// Read run flags from this TOML file (keys are long flag names:
    /// `connections = 4`, `threshold = ["p99 < 5ms"]`); flags given on the
    /// command line override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The arguments as given, program name first (for the report).
    #[arg(skip)]
    pub command_line: Vec<String>,

    /// Which defaulted flags were given (set by [`Cli::try_parse_checked`]).
    #[arg(skip)]
    pub given: Given,
}

/// Parses `MIN..MAX`, a single value, or a comma list into [`Amounts`].
fn parse_amounts(s: &str) -> Result<Amounts, String> {
    let number = |t: &str| {
        t.trim()
            .parse::<u64>()
            .map_err(|e| format!("bad amount {t:?} in {s:?}: {e}"))
    };
    let amounts = match s.split_once("..") {
        Some((lo, hi)) => Amounts::Range(number(lo)?, number(hi.trim_start_matches('='))?),
        None if s.contains(',') => Amounts::List(s.split(',').map(number).collect::<Result<_, _>>()?),
        None => {
            let n = number(s)?;
            Amounts::Range(n, n)
        }
    };
    let valid = match &amounts {
        Amounts::Range(lo, hi) => *lo >= 1 && lo <= hi,
        Amounts::List(list) => !list.is_empty() && list.iter().all(|a| *a >= 1),
    };
    if !valid {
        return Err(format!("amounts must be at least 1 and MIN <= MAX, got {s:?}"));
    }
    Ok(amounts)
}

impl RunArgs {
    /// Checks the combinations clap cannot; the message names the flag.
    pub fn validate(&self) -> Result<(), String> {
        let fractions = [
            ("--deposit-ratio", self.deposit_ratio),
            ("--transfer-ratio", self.transfer_ratio),
            ("--wait-for-funds", self.wait_for_funds),
            ("--read-ratio", self.read_ratio),
            ("--duplicate-ratio", self.duplicate_ratio),
            ("--invalid-ratio", self.invalid_ratio),
        ];
        for (flag, value) in fractions {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!("{flag} must be between 0 and 1, got {value}"));
            }
        }
        if self.deposit_ratio + self.transfer_ratio > 1.0 {
            return Err("--deposit-ratio + --transfer-ratio must not exceed 1".into());
        }
        if let Some(id) = &self.attach {
            check_run_id(id).map_err(|e| format!("--attach: {e}"))?;
            if self.target.is_empty() {
                return Err("--attach needs --target (the server the accounts were opened on)".into());
            }
        }
        if self.connections == 0 || self.streams == 0 || self.pipeline == 0 || self.accounts == 0 {
            return Err("--connections, --streams, --pipeline and --accounts must be at least 1".into());
        }
        let limits = [
            ("--connections", self.connections, CONNECTIONS_MAX),
            ("--streams", self.streams, STREAMS_MAX),
            ("--pipeline", self.pipeline, PIPELINE_MAX),
            ("--accounts", self.accounts, ACCOUNTS_MAX),
        ];
        for (flag, value, max) in limits {
            if value > max {
                return Err(format!("{flag} must be at most {max}, got {value}"));
            }
        }
        if self.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            return Err("--rate must be a positive number of ops per second".into());
        }
        if self.requests == Some(0) {
            return Err("--requests must be at least 1".into());
        }
        self.validate_combinations()
    }

    /// Flags that contradict each other, or that would be silently ignored.
    fn validate_combinations(&self) -> Result<(), String> {
        if self.stages.is_some() && (self.rate.is_some() || self.given.duration || self.requests.is_some()) {
            return Err(
                "--stages sets both the rate and the duration: drop --rate, --duration and --requests".into(),
            );
        }
        if self.requests.is_some() && self.given.duration {
            return Err("--requests and --duration both end the run: give one of them".into());
        }
        let server_flags =
            self.given.server_delay || self.server_unsafe_no_lock || self.server_inject_bug.is_some();
        if self.target.len() > self.connections {
            return Err(format!(
                "{} targets need at least as many --connections (one each at least), not {}",
                self.target.len(),
                self.connections
            ));
        }
        if !self.target.is_empty() && server_flags {
            return Err(
                "--server-delay, --server-unsafe-no-lock and --server-inject-bug configure the \
                 embedded server; with --target there is none (configure that server instead)"
                    .into(),
            );
        }
        Ok(())
    }
}

/// The flags of `stress-client conformance`.
#[derive(Clone, clap::Args)]
pub struct ConformanceArgs {
    /// The server to check (e.g. http://127.0.0.1:50051, https://localhost:50051).
    #[arg(long)]
    pub target: String,

    /// CA certificate(s) (PEM) that an `https://` target's certificate must
    /// chain to; without it the webpki roots are trusted.
    #[arg(long, value_name = "PATH")]
    pub tls_ca: Option<PathBuf>,

    /// DANGER: do not verify an `https://` target's certificate (self-signed
    /// labs only). Prefer --tls-ca.
    #[arg(long, conflicts_with = "tls_ca")]
    pub tls_insecure: bool,

    /// The first principal's bearer token, sent with every call.
    #[arg(long, value_name = "TOKEN", env = "BANK_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// A second principal's token (with `--token`): enables the ownership checks.
    #[arg(
        long,
        value_name = "TOKEN",
        requires = "token",
        env = "BANK_SECOND_TOKEN",
        hide_env_values = true
    )]
    pub second_token: Option<String>,

    /// Extra metadata sent with every call (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,

    /// Deadline of each call.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Run only the checks whose id starts with this prefix (repeatable).
    #[arg(long = "only", value_name = "PREFIX")]
    pub only: Vec<String>,
}

impl std::fmt::Debug for ConformanceArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens.
        f.debug_struct("ConformanceArgs")
            .field("target", &self.target)
            .field("tls_ca", &self.tls_ca)
            .field("tls_insecure", &self.tls_insecure)
            .field("tokens", &(self.token.is_some(), self.second_token.is_some()))
            .field("timeout", &self.timeout)
            .field("json", &self.json)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_and_reject() {
        assert_eq!(parse_amounts("1..100"), Ok(Amounts::Range(1, 100)));
        assert_eq!(parse_amounts("70"), Ok(Amounts::Range(70, 70)));
        assert_eq!(parse_amounts("5..=9"), Ok(Amounts::Range(5, 9)));
        assert_eq!(parse_amounts("70,80"), Ok(Amounts::List(vec![70, 80])));
        assert!(parse_amounts("70,0").is_err());
        assert!(parse_amounts("0..5").is_err());
        assert!(parse_amounts("9..5").is_err());
        assert!(parse_amounts("x").is_err());
    }

    fn usage_error(line: &str) -> Option<String> {
        let cli = Cli::try_parse_checked(line.split_whitespace()).unwrap();
        cli.run.validate().err()
    }

    #[test]
    fn stages_exclude_rate_duration_and_requests() {
        assert_eq!(usage_error("stress-client --stages 1s@10,1s@10..20"), None);
        for other in ["--rate 5", "--duration 5s", "--requests 9"] {
            let err = usage_error(&format!("stress-client --stages 1s@10 {other}"));
            assert!(err.is_some_and(|e| e.contains("--stages")), "{other}");
        }
        assert_eq!(usage_error("stress-client --duration 5s --rate 5"), None);
        let both = usage_error("stress-client --duration 5s --requests 5");
        assert!(both.is_some_and(|e| e.contains("--requests and --duration")));
    }

    #[test]
    fn targets_repeat_and_each_needs_a_connection() {
        let two = "stress-client --target http://127.0.0.1:1 --target http://127.0.0.1:2";
        assert_eq!(usage_error(two), None);
        let err = usage_error(&format!("{two} --connections 1"));
        assert!(err.is_some_and(|e| e.contains("2 targets")));
    }

    #[test]
    fn embedded_server_flags_with_a_target_are_usage_errors() {
        let target = "stress-client --target http://127.0.0.1:1";
        assert_eq!(usage_error(target), None);
        for flag in [
            "--server-delay 1ms",
            "--server-unsafe-no-lock",
            "--server-inject-bug lost-update",
        ] {
            let err = usage_error(&format!("{target} {flag}"));
            assert!(err.is_some_and(|e| e.contains("--target")), "{flag}");
        }
    }

    #[test]
    fn warmup_defaults_to_zero_for_count_and_stage_runs_only() {
        let warmup = |line: &str| {
            Cli::try_parse_checked(line.split_whitespace())
                .unwrap()
                .run
                .warmup
        };
        assert_eq!(warmup("stress-client"), Duration::from_secs(1));
        assert_eq!(warmup("stress-client --requests 10"), Duration::ZERO);
        assert_eq!(warmup("stress-client --stages 1s@10"), Duration::ZERO);
        assert_eq!(
            warmup("stress-client --requests 10 --warmup 2s"),
            Duration::from_secs(2)
        );
    }

    /// Parses `line` with a config file holding `toml`.
    fn with_config_file(toml: &str, line: &str) -> Result<Cli, clap::Error> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        std::fs::write(&path, toml).unwrap();
        let mut args: Vec<String> = line.split_whitespace().map(String::from).collect();
        args.extend(["--config".into(), path.display().to_string()]);
        Cli::try_parse_checked(args)
    }

    #[test]
    fn a_config_file_sets_flags_and_the_command_line_wins() {
        let toml = "connections = 3\nserver-delay = \"0s\"\nquiet = true\ndeposit-ratio = 0.5\n\
                    threshold = [\"p99 < 5ms\", \"error_rate < 1%\"]\ntarget = [\"http://a:1\"]\n";
        let run = with_config_file(toml, "stress-client").unwrap().run;
        assert_eq!((run.connections, run.quiet, run.deposit_ratio), (3, true, 0.5));
        assert_eq!(run.server_delay, Duration::ZERO);
        assert!(run.given.server_delay, "a flag from the file counts as given");
        assert_eq!(run.threshold.len(), 2);
        assert_eq!(run.target, ["http://a:1"]);
        let line = "stress-client --connections 5 --threshold p50<1s --target http://b:2";
        let run = with_config_file(toml, line).unwrap().run;
        assert_eq!(run.connections, 5);
        assert_eq!(
            run.threshold.len(),
            1,
            "a list on the command line replaces the file's"
        );
        assert_eq!(run.target, ["http://b:2"]);
        assert_eq!(
            run.server_delay,
            Duration::ZERO,
            "the rest still comes from the file"
        );
        assert_eq!(
            run.command_line.len(),
            9,
            "the argv as given: {:?}",
            run.command_line
        );
    }

    #[test]
    fn a_bad_config_is_a_usage_error_naming_the_key() {
        let err = |toml: &str| with_config_file(toml, "stress-client").unwrap_err();
        for (toml, named) in [
            ("conections = 4", "\"conections\""),
            ("server_delay = \"1s\"", "did you mean \"server-delay\""),
            ("config = \"x.toml\"", "\"config\""),
            ("quiet = \"yes\"", "quiet is a switch"),
            ("connections = \"many\"", "many"),
            ("[compare]\nfail-if-slower = 1", "\"compare\""),
            ("connections = ", "not TOML"),
        ] {
            let e = err(toml);
            assert_eq!(e.exit_code(), 2, "{toml}");
            assert!(e.to_string().contains(named), "{toml}: {e}");
        }
        let missing = Cli::try_parse_checked(["stress-client", "--config", "/nonexistent.toml"]);
        assert!(missing.unwrap_err().to_string().contains("/nonexistent.toml"));
    }

    #[test]
    fn the_reported_command_line_hides_tokens_and_metadata_values() {
        let line = "stress-client --target https://b:1 --token s3cret --metadata x-key=abc --seed 7";
        let cli = Cli::try_parse_checked(line.split_whitespace()).unwrap();
        assert_eq!(
            cli.run.command_line.join(" "),
            "stress-client --target https://b:1 --token *** --metadata x-key=*** --seed 7"
        );
        let joined: Vec<OsString> = ["x", "--token=s3cret", "--metadata=tenant=t1", "--seed=7"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(
            redacted(&joined),
            ["x", "--token=***", "--metadata=tenant=***", "--seed=7"]
        );
    }

    #[test]
    fn check_target_bounds_default_and_refuse_zero_or_more_than_a_day() {
        let check = |extra: &[&str]| {
            let line = ["stress-client", "check", "h.jsonl"].iter().chain(extra);
            Cli::try_parse_from(line).map(|cli| match cli.command {
                Some(Command::Check(args)) => (args.timeout, args.resolve_timeout, args.final_reads_timeout),
                _ => panic!("not check"),
            })
        };
        let secs = Duration::from_secs;
        assert_eq!(check(&[]).unwrap(), (secs(10), secs(60), secs(120)));
        let set = [
            "--timeout",
            "2s",
            "--resolve-timeout",
            "5m",
            "--final-reads-timeout",
            "24h",
        ];
        assert_eq!(check(&set).unwrap(), (secs(2), secs(300), CHECK_WAIT_MAX));
        for flag in ["--timeout", "--resolve-timeout", "--final-reads-timeout"] {
            for (bad, says) in [("0s", "more than 0"), ("25h", "at most"), ("soon", "expected")] {
                let err = check(&[flag, bad]).unwrap_err().to_string();
                assert!(err.contains(flag) && err.contains(says), "{flag} {bad}: {err}");
            }
        }
    }

    #[test]
    fn defaults_are_valid_and_bad_ratios_are_not() {
        let cli = Cli::try_parse_from(["stress-client"]).unwrap();
        cli.run.validate().unwrap();
        let bad = Cli::try_parse_from([
            "stress-client",
            "--deposit-ratio",
            "0.8",
            "--transfer-ratio",
            "0.5",
        ])
        .unwrap();
        assert!(bad.run.validate().is_err());
    }
}
