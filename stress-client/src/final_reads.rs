//! After the load (and for `check --target`): read every account's final
//! balance and sequence, many reads at once over all the connections, bounded
//! by a deadline the caller sets. An account whose read failed or did not
//! start in time has no final state, and the checker judges with what it has.

use std::ops::ControlFlow;
use std::time::Instant;

use bank::v1 as pb;
use bank_checker::AccountState;
use tonic::Code;

use crate::after_run::{retryable, Calls};
use crate::bound::within;
use crate::drive::Names;
use crate::fanout::fan_out;
use crate::progress::PhaseBar;

/// `GetBalance` calls in flight at once for the final reads, over all connections.
const FINAL_READ_CONCURRENCY: usize = 256;

/// What the final read of one account got: its state, or the status code.
type FinalRead = Result<pb::Account, Code>;

/// Reads every account's final balance and sequence, in account order
/// (`None` where the read failed or `calls.until` passed first).
pub async fn final_states(
    calls: &Calls,
    names: &Names,
    initial_balance: u64,
    bar: &PhaseBar,
) -> Vec<AccountState> {
    let mut read: Vec<Option<FinalRead>> = vec![None; names.accounts.len()];
    let read_one = |i: usize| {
        let (clients, timeout, until) = (calls.from(i), calls.timeout, calls.until);
        let id = names.account(u32::try_from(i).expect("--accounts is bounded by validate"));
        async move {
            let mut last = None;
            // A read that fails retryably is tried over the next connection
            // (another server, with several --target), once per connection.
            for mut client in clients {
                // No read starts after `until`: its account keeps no final state.
                if Instant::now() >= until {
                    break;
                }
                let message = pb::GetBalanceRequest {
                    account_id: id.clone(),
                };
                let reply = within(timeout, client.get_balance(message)).await;
                match reply {
                    Err(status) if retryable(&status) => last = Some(Err(status.code())),
                    reply => return Some((i, reply.map_err(|status| status.code()))),
                }
            }
            last.map(|answer| (i, answer))
        }
    };
    let store = |answer: Option<(usize, FinalRead)>| {
        if let Some((i, answer)) = answer {
            bar.inc();
            read[i] = Some(answer);
        }
        ControlFlow::Continue(())
    };
    let reading = fan_out(names.accounts.len(), FINAL_READ_CONCURRENCY, read_one, store);
    // A read still in flight at the hard stop is aborted: its account has no final state.
    let _ = tokio::time::timeout_at(calls.hard_stop().into(), reading).await;
    names
        .accounts
        .iter()
        .zip(read)
        .map(|(id, answer)| account_state(id, initial_balance, answer))
        .collect()
}

fn account_state(id: &str, initial_balance: u64, answer: Option<FinalRead>) -> AccountState {
    let account = answer.as_ref().and_then(|a| a.as_ref().ok());
    AccountState {
        account_id: id.to_owned(),
        initial_balance,
        final_balance: account.map(|a| a.balance),
        final_sequence: account.map(|a| a.sequence),
        final_not_found: matches!(answer, Some(Err(Code::NotFound))),
    }
}
