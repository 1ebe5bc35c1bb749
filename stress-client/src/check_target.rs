//! What `check --target` asks the server once every process has finished,
//! with the code a live run uses after its load: first `GetOperation` about
//! every op still in doubt whose line gave its request id ([`crate::settle`],
//! which also fences the id), then every account's final state
//! ([`crate::final_reads`]). The run's token, if any, goes with both (the
//! accounts' owner; `--token` as for the load).

use std::time::Instant;

use bank_checker::{History, Outcome};
use tonic::transport::Channel;

use crate::after_run::Calls;
use crate::cli::CheckArgs;
use crate::drive::Names;
use crate::final_reads;
use crate::history::merge::Merged;
use crate::progress::PhaseBar;
use crate::settle::{self, Ask, Settlement};

/// Connections `check --target` opens.
const CONNECTIONS: usize = 4;

/// Settles the in-doubt ops of `m` and reads every final state into it;
/// returns how the settling went.
pub fn ask(args: &CheckArgs, m: &mut Merged) -> Result<Settlement, String> {
    let runtime = crate::setup::runtime()?;
    runtime.block_on(async {
        crate::transport::install(&args.transport)?;
        let count = CONNECTIONS.max(args.target.len());
        let channels = crate::setup::connect(&args.target, count).await?;
        let settlement = settle_in_doubt(&channels, args, m).await;
        read_finals(&channels, args, &mut m.history).await;
        Ok(settlement)
    })
}

/// Asks `GetOperation` about every op of unknown outcome that has a request
/// id, and writes each answer into its op as a live run does. Retries of an
/// op still waiting for funds stop at `--resolve-timeout`; it stays unknown.
async fn settle_in_doubt(channels: &[Channel], args: &CheckArgs, m: &mut Merged) -> Settlement {
    let h = &mut m.history;
    let asks: Vec<Ask<u32>> = m
        .request_ids
        .iter()
        .filter_map(|(op, id)| {
            let o = h
                .ops
                .get(*op as usize)
                .filter(|o| o.outcome == Outcome::Unknown)?;
            let account = h.accounts.get(o.account as usize)?;
            Some((*op, account.account_id.clone(), id.clone()))
        })
        .collect();
    let mut settlement = Settlement {
        indeterminate: asks.len() as u64,
        ..Settlement::default()
    };
    let calls = Calls::new(channels, args.timeout, Instant::now() + args.resolve_timeout);
    let bar = PhaseBar::start("settling unknown ops", asks.len() as u64, false);
    let (answers, notes) = settle::ask_all(&calls, asks, &bar).await;
    bar.finish();
    for (op, flags) in notes {
        h.ops[op as usize].flags |= flags;
    }
    // The answer came after every process had finished: after every time
    // in the files, so the op precedes nothing it did not (as in a live run).
    let recv_ns = after_everything(h);
    for (op, (result, _)) in answers {
        let Ok(i) = m.request_ids.binary_search_by_key(&op, |(at, _)| *at) else {
            continue;
        };
        let asked = (&result, m.request_ids[i].1.as_str());
        let applied = settle::apply(h.ops.get_mut(op as usize), &mut h.transfers, op, asked, recv_ns);
        settlement.resolved_applied += u64::from(applied);
        settlement.resolved += 1;
    }
    settlement
}

/// A time later than every time recorded in `h` (`u64::MAX`, never, aside).
fn after_everything(h: &History) -> u64 {
    let known = |t: u64| if t == u64::MAX { 0 } else { t };
    let ops = h.ops.iter().map(|o| known(o.send_ns).max(known(o.recv_ns)));
    let reads = h.reads.iter().map(|r| known(r.send_ns).max(known(r.recv_ns)));
    let dups = h
        .duplicates
        .iter()
        .map(|d| known(d.send_ns).max(known(d.recv_ns)));
    let calls = h.invalid.iter().map(|c| known(c.send_ns).max(known(c.recv_ns)));
    let last = ops.chain(reads).chain(dups).chain(calls).max().unwrap_or(0);
    last.saturating_add(1).min(u64::MAX - 1)
}

/// Reads every account's final state from the target into `h`, within
/// `--final-reads-timeout`.
async fn read_finals(channels: &[Channel], args: &CheckArgs, h: &mut History) {
    let names = Names {
        run_id: String::new(),
        accounts: h.accounts.iter().map(|a| a.account_id.clone()).collect(),
    };
    let calls = Calls::new(channels, args.timeout, Instant::now() + args.final_reads_timeout);
    let bar = PhaseBar::start("reading final states", names.accounts.len() as u64, false);
    let finals = final_reads::final_states(&calls, &names, 0, &bar).await;
    bar.finish();
    for (a, f) in h.accounts.iter_mut().zip(finals) {
        (a.final_balance, a.final_sequence, a.final_not_found) =
            (f.final_balance, f.final_sequence, f.final_not_found);
    }
}
