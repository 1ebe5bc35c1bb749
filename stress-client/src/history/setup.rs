//! `stress-client setup`: opens a multi-process run's shared accounts and
//! writes them (ids, opening balances) as a history file with no ops, which
//! `check` takes with the load processes' histories. Exit 0 when every
//! account was opened and the file written, 2 otherwise.

use std::time::Instant;

use crate::cli::{check_run_id, SetupArgs, ACCOUNTS_MAX};
use crate::progress::PhaseBar;
use crate::run::Exit;
use crate::workload::account_id;
use bank_checker::{AccountState, History};

use super::{write, Anchor, Meta};

/// Connections `setup` opens (it makes one call per account).
const SETUP_CONNECTIONS: usize = 4;

pub fn run(args: &SetupArgs) -> Exit {
    match setup(args) {
        Ok(()) => Exit::Passed,
        Err(e) => {
            eprintln!("stress-client setup: {e}");
            Exit::Failure
        }
    }
}

fn setup(args: &SetupArgs) -> Result<(), String> {
    check_run_id(&args.run_id).map_err(|e| format!("--run-id: {e}"))?;
    if args.accounts == 0 || args.accounts > ACCOUNTS_MAX {
        return Err(format!(
            "--accounts must be 1 to {ACCOUNTS_MAX}, got {}",
            args.accounts
        ));
    }
    let count = u32::try_from(args.accounts).map_err(|_| "--accounts is too large".to_owned())?;
    let ids: Vec<String> = (0..count).map(|i| account_id(&args.run_id, i)).collect();
    let origin = Instant::now();
    let start_anchor = Anchor::now(origin);
    let runtime = crate::setup::runtime()?;
    runtime.block_on(async {
        crate::transport::install(&args.transport)?;
        let channels = crate::setup::connect(&args.target, SETUP_CONNECTIONS.max(args.target.len())).await?;
        let bar = PhaseBar::start("opening accounts", ids.len() as u64, false);
        let opened =
            crate::setup::open_accounts(&channels, &ids, args.initial_balance, args.timeout, &bar).await;
        bar.finish();
        opened
    })?;
    let history = History {
        accounts: ids
            .into_iter()
            .map(|id| AccountState::opened(id, args.initial_balance))
            .collect(),
        ..History::default()
    };
    let meta = Meta {
        run_id: args.run_id.clone(),
        process_id: 0,
        role: "setup".to_owned(),
        start_anchor,
        end_anchor: Anchor::now(origin),
    };
    write(&args.history, &history, &[], &meta)
}
