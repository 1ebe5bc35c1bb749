//! One stress run from start to verdict: pick the target (embedded or
//! external), connect, open fresh accounts, drive the load, settle unknowns,
//! check the history, write the outputs, and turn the verdict into an exit code.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::after_run::Calls;
use crate::cli::RunArgs;
use crate::drive::{self, Load, Names};
use crate::progress::Live;
use crate::progress::{PhaseBar, Progress};
use crate::recorder::Recorder;
use crate::report::{self, Consistency, Merged, Shape, Summary};
use crate::request_id::process_run_id;
use crate::target::Target;
use crate::timeline::{Interval, Intervals};
use crate::workload::{account_id, Amounts};
use crate::{final_reads, outputs, recorder, settle, setup};

pub use crate::exit::Exit;

/// Setup and after-run calls (settling, final reads) get `--timeout`, but at least this: a `--timeout`
/// short enough to provoke unknown outcomes under load must neither fail the
/// setup nor leave the unknowns unsettled.
const MIN_BOOKKEEPING_CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// The final reads may take this many times as long as opening the accounts
/// took (they are as many calls over the same connections), plus `--timeout`.
const FINAL_READS_SETUP_FACTOR: u32 = 2;

/// Runs a whole stress run; the summary, or why it could not run.
pub fn execute(args: &RunArgs) -> Result<Summary, String> {
    args.validate()?;
    let attached = attached_args(args);
    let args = attached.as_ref().unwrap_or(args);
    let target = match args.target.is_empty() {
        false => Target::external(args.target.clone()),
        true => Target::embedded(
            args.server_delay,
            args.server_unsafe_no_lock,
            args.accounts,
            args.server_inject_bug.unwrap_or_default(),
        )
        .map_err(|e| format!("cannot start the embedded server: {e}"))?,
    };
    if target.is_embedded() && !args.quiet {
        eprintln!(
            "stress-client: started an embedded bank server on {} (processing delay {:?}{})",
            target.endpoints.join(", "),
            args.server_delay,
            if args.server_unsafe_no_lock {
                ", UNSAFE: no lock"
            } else {
                ""
            }
        );
    }
    let runtime = crate::setup::runtime()?;
    let result = runtime.block_on(run_against(args, &target.endpoints));
    drop(runtime);
    target.stop();
    result
}

/// With `--process-id K`, the run's flags with K mixed into the seed, so
/// attached processes given one `--seed` still send different ops.
fn attached_args(args: &RunArgs) -> Option<RunArgs> {
    let k = args.process_id?;
    let seed = args.seed ^ u64::from(k).wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    Some(RunArgs { seed, ..args.clone() })
}

/// What an attached process says of its own history.
pub const ATTACHED_UNDECIDED: &str = "other processes share these accounts: run `check`";

/// The exit code a summary calls for (the most severe finding wins; a run
/// that completed no op proves nothing, so it is a failure, not a pass).
pub fn exit_for(summary: &Summary) -> Exit {
    crate::exit::decide(crate::exit::Findings {
        operations: summary.operations.total,
        verdict: summary.consistency.verdict,
        thresholds_crossed: summary.thresholds.iter().any(|t| !t.passed),
    })
}

async fn run_against(args: &RunArgs, endpoints: &[String]) -> Result<Summary, String> {
    crate::transport::install(&args.transport)?;
    let channels = setup::connect(endpoints, args.connections).await?;
    let setup_start = Instant::now();
    let names = Arc::new(prepare_accounts(args, &channels).await?);
    let setup_took = setup_start.elapsed();
    tracing::info!("opened {} accounts in {setup_took:?}", args.accounts);
    let live = Arc::new(Live::default());
    let timeline = args.histogram_log.is_some() || args.html.is_some() || args.csv.is_some();
    // The progress line's p99 of the last second comes from the collector.
    let (intervals, collector) = interval_collector(timeline || Progress::shown(args.quiet), &live);
    let progress = Progress::start(Arc::clone(&live), args.quiet);
    let load = Load {
        args,
        channels: &channels,
        targets: endpoints,
        names: Arc::clone(&names),
        live,
        intervals,
    };
    // The clock starts once the load's connections are open (drive::Clock).
    let (recorders, clock) = drive::drive(load).await?;
    let (start, wall_start) = (clock.start, clock.wall);
    let measured = Instant::now().saturating_duration_since(start + args.warmup);
    if let Some(p) = progress {
        p.finish();
    }
    let finish = Finish {
        args,
        endpoints,
        channels: &channels,
        names: &names,
        setup_took,
        clock: (start, clock.anchor),
    };
    let (merged, mut summary) = finish.wrap_up(recorders, measured).await?;
    summary.started_at = humantime::format_rfc3339_millis(wall_start).to_string();
    summary.command_line = args.command_line.clone();
    summary.thresholds = crate::threshold::check_all(&args.threshold, &report::measured(&summary));
    let timeline = collected(collector).await?;
    outputs::write(args, &summary, &merged, &timeline, wall_start)?;
    for warning in &summary.warnings {
        eprintln!("stress-client: WARNING: {warning}");
    }
    Ok(summary)
}

/// The intervals the collector added up (none when it was not started).
async fn collected(collector: Option<JoinHandle<Intervals>>) -> Result<Intervals, String> {
    match collector {
        Some(task) => task.await.map_err(|e| format!("interval collector failed: {e}")),
        None => Ok(Intervals::new()),
    }
}

/// Names this run's fresh accounts and opens them over all `channels`.
async fn prepare_accounts(args: &RunArgs, channels: &[Channel]) -> Result<Names, String> {
    let count = u32::try_from(args.accounts).expect("--accounts is bounded by validate");
    if let (Some(id), Some(k)) = (&args.attach, args.process_id) {
        // Accounts named as `setup` named them; request ids carry the process.
        let accounts = (0..count).map(|i| account_id(id, i)).collect();
        return Ok(Names {
            run_id: process_run_id(id, k),
            accounts,
        });
    }
    let run_id = format!("{:016x}", rand::random::<u64>());
    let accounts: Vec<String> = (0..count).map(|i| account_id(&run_id, i)).collect();
    let bar = PhaseBar::start("opening accounts", accounts.len() as u64, args.quiet);
    let timeout = bookkeeping_timeout(args);
    let opened = setup::open_accounts(channels, &accounts, args.initial_balance, timeout, &bar).await;
    bar.finish();
    opened?;
    Ok(Names { run_id, accounts })
}

/// The deadline of each setup and after-run call.
fn bookkeeping_timeout(args: &RunArgs) -> Duration {
    args.timeout.max(MIN_BOOKKEEPING_CALL_TIMEOUT)
}

/// What the phases after the load need.
struct Finish<'a> {
    args: &'a RunArgs,
    endpoints: &'a [String],
    channels: &'a [Channel],
    names: &'a Names,
    /// How long opening the accounts took: the final reads are as many calls.
    setup_took: Duration,
    /// The run clock's zero and the wall clock then (for `--history`).
    clock: (Instant, crate::history::Anchor),
}

impl Finish<'_> {
    /// Settles unknown ops, reads final states, checks the history, summarises.
    async fn wrap_up(
        &self,
        mut recorders: Vec<Recorder>,
        measured: Duration,
    ) -> Result<(Merged, Summary), String> {
        let (args, names) = (self.args, self.names);
        let failed = recorders.iter().map(|r| r.failures.len() as u64).sum();
        let bar = PhaseBar::start("settling unknown ops", failed, args.quiet);
        let timeout = bookkeeping_timeout(args);
        let calls = Calls::new(self.channels, timeout, Instant::now() + args.resolve_timeout);
        let started = Instant::now();
        let settlement = settle::resolve(&calls, names, &mut recorders, &bar).await;
        bar.finish();
        tracing::info!("settled {failed} unknown op(s) in {:?}", started.elapsed());
        let finals = self.final_states().await;
        let merged = report::merge(&recorders);
        let unknown_ids = match args.history {
            Some(_) => settle::still_unknown(names, &recorders),
            None => Vec::new(),
        };
        let history = recorder::history(&mut recorders, finals);
        // The records moved into the history; the rest of the recorders can go.
        drop(recorders);
        if let Some(path) = &args.history {
            crate::history::write(path, &history, &unknown_ids, &self.history_meta())?;
        }
        Ok(check_and_summarize(
            args,
            self.endpoints,
            merged,
            history,
            settlement,
            measured,
        ))
    }

    /// Reads every account's final state; an attached process reads none
    /// (the other processes may still be sending): `check --target` does.
    async fn final_states(&self) -> Vec<bank_checker::AccountState> {
        let (args, names) = (self.args, self.names);
        if args.attach.is_some() {
            let opened = |id: &String| bank_checker::AccountState::opened(id.clone(), args.initial_balance);
            return names.accounts.iter().map(opened).collect();
        }
        let bar = PhaseBar::start("reading final states", names.accounts.len() as u64, args.quiet);
        let timeout = bookkeeping_timeout(args);
        let until = Instant::now() + timeout + self.setup_took * FINAL_READS_SETUP_FACTOR;
        let calls = Calls::new(self.channels, timeout, until);
        let started = Instant::now();
        let finals = final_reads::final_states(&calls, names, args.initial_balance, &bar).await;
        bar.finish();
        tracing::info!("read {} final states in {:?}", finals.len(), started.elapsed());
        finals
    }

    /// Who writes the `--history` file, and the clock anchors.
    fn history_meta(&self) -> crate::history::Meta {
        crate::history::Meta {
            run_id: self
                .args
                .attach
                .clone()
                .unwrap_or_else(|| self.names.run_id.clone()),
            process_id: self.args.process_id.unwrap_or(0),
            role: if self.args.attach.is_some() {
                "attached"
            } else {
                "run"
            }
            .to_owned(),
            start_anchor: self.clock.1,
            end_anchor: crate::history::Anchor::now(self.clock.0),
        }
    }
}

/// Checks the history and summarises the run.
fn check_and_summarize(
    args: &RunArgs,
    endpoints: &[String],
    merged: Merged,
    history: bank_checker::History,
    settlement: settle::Settlement,
    measured: Duration,
) -> (Merged, Summary) {
    let consistency = match args.attach.is_some() {
        // Other processes' ops interleave with these on the same accounts:
        // alone, this history proves nothing either way.
        true => Consistency::undecided(&history, ATTACHED_UNDECIDED),
        false => Consistency::from(bank_checker::check(&history)),
    };
    drop(history);
    let summary = report::summarize(
        &merged,
        settlement,
        measured,
        consistency,
        config_json(args, endpoints),
        Shape {
            rate: args.rate,
            stages: args.stages.as_ref(),
            workers: args.streams,
            window: args.requests.is_none().then_some(args.duration),
        },
    );
    (merged, summary)
}

type IntervalSender = mpsc::UnboundedSender<(u64, Interval)>;

/// A task that adds up the workers' intervals as they arrive.
fn interval_collector(
    enabled: bool,
    live: &Arc<Live>,
) -> (Option<IntervalSender>, Option<JoinHandle<Intervals>>) {
    if !enabled {
        return (None, None);
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Interval)>();
    let live = Arc::clone(live);
    let task = tokio::spawn(async move {
        let mut intervals = Intervals::new();
        while let Some((index, interval)) = rx.recv().await {
            intervals.entry(index).or_default().add(&interval);
            crate::timeline::publish_last_p99(&intervals, index, &live);
        }
        intervals
    });
    (Some(tx), Some(task))
}

fn config_json(args: &RunArgs, endpoints: &[String]) -> serde_json::Value {
    serde_json::json!({
        "targets": endpoints,
        "embedded": args.target.is_empty(),
        "connections": args.connections,
        "streams": args.streams,
        "mode": args.mode,
        "pipeline": args.pipeline,
        "duration_s": args.stages.as_ref().map_or(args.duration, |p| p.total()).as_secs_f64(),
        "requests": args.requests,
        "warmup_s": args.warmup.as_secs_f64(),
        "rate": args.rate,
        "stages": args.stages.as_ref().map(stages_json),
        "accounts": args.accounts,
        "initial_balance": args.initial_balance,
        "amount": amounts_json(&args.amount),
        "deposit_ratio": args.deposit_ratio,
        "transfer_ratio": args.transfer_ratio,
        "wait_for_funds": args.wait_for_funds,
        "read_ratio": args.read_ratio,
        "invalid_ratio": args.invalid_ratio,
        "duplicate_ratio": args.duplicate_ratio,
        "timeout_s": args.timeout.as_secs_f64(),
        "seed": args.seed,
        "server_delay_s": args.target.is_empty().then_some(args.server_delay.as_secs_f64()),
        "server_unsafe_no_lock": args.target.is_empty().then_some(args.server_unsafe_no_lock),
        "server_inject_bug": args.server_inject_bug.filter(|_| args.target.is_empty()).map(|b| b.name()),
    })
}

fn stages_json(plan: &crate::stages::Plan) -> serde_json::Value {
    let stages: Vec<_> = plan
        .stages
        .iter()
        .map(|s| serde_json::json!({ "duration_s": s.duration.as_secs_f64(), "from": s.from, "to": s.to }))
        .collect();
    serde_json::json!(stages)
}

fn amounts_json(amounts: &Amounts) -> serde_json::Value {
    match amounts {
        Amounts::Range(min, max) => serde_json::json!({ "min": min, "max": max }),
        Amounts::List(list) => serde_json::json!(list),
    }
}
