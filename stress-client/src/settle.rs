//! After the load: settle every op whose call failed by asking the server
//! (`GetOperation`, which also fences the id so a late copy can never apply),
//! read every account's final state, and assemble the history for the checker.

use std::time::{Duration, Instant};

use bank::v1 as pb;
use bank::v1::bank_client::BankClient;
use bank_checker::{AccountState, History, Outcome};
use futures::StreamExt;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::drive::Names;
use crate::recorder::{outcome_of, Failure, Recorder};
use crate::workload::request_id;

/// `GetOperation` calls in flight at once while settling.
const RESOLVE_CONCURRENCY: usize = 32;
/// Deadline of one settle call.
const SETTLE_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two asks about the same op (it may still be waiting for funds).
const RESOLVE_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// How the unknowns were settled.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settlement {
    /// Ops whose call failed, so their outcome was unknown.
    pub indeterminate: u64,
    /// Of those, how many the server settled.
    pub resolved: u64,
    /// Of the settled ones, how many had taken effect (approved or denied).
    pub resolved_applied: u64,
}

/// Settles failed ops in place; returns the counts.
pub async fn resolve(
    channel: &Channel,
    names: &Names,
    recorders: &mut [Recorder],
    patience: Duration,
) -> Settlement {
    let failures: Vec<(usize, Failure)> = recorders
        .iter()
        .enumerate()
        .flat_map(|(r, rec)| rec.failures.iter().map(move |f| (r, *f)))
        .collect();
    let client = BankClient::new(channel.clone());
    let answers: Vec<_> = futures::stream::iter(failures)
        .map(|(r, f)| {
            let account = account_of(names, &recorders[r], f);
            let request_id = request_id(&names.run_id, f.worker, f.number);
            let client = client.clone();
            async move { (r, f, ask(client, account, request_id, patience).await) }
        })
        .buffer_unordered(RESOLVE_CONCURRENCY)
        .collect()
        .await;
    let mut settlement = Settlement {
        indeterminate: answers.len() as u64,
        ..Settlement::default()
    };
    for (r, f, answer) in answers {
        if let Some((result, at)) = answer {
            settlement.resolved_applied += u64::from(apply(&mut recorders[r], f, &result, at));
            settlement.resolved += 1;
        }
    }
    settlement
}

fn account_of(names: &Names, rec: &Recorder, f: Failure) -> String {
    let index = rec.ops.get(f.op as usize).map_or(0, |op| op.account);
    names.accounts.get(index as usize).cloned().unwrap_or_default()
}

/// Asks until the server gives a final answer or `patience` runs out.
async fn ask(
    mut client: BankClient<Channel>,
    account_id: String,
    request_id: String,
    patience: Duration,
) -> Option<(pb::OperationResult, Instant)> {
    let give_up = Instant::now() + patience;
    loop {
        let mut request = Request::new(pb::GetOperationRequest {
            account_id: account_id.clone(),
            request_id: request_id.clone(),
        });
        request.set_timeout(SETTLE_CALL_TIMEOUT);
        match client.get_operation(request).await {
            Ok(reply) => return Some((reply.into_inner(), Instant::now())),
            Err(status) if retryable(&status) && Instant::now() < give_up => {
                tokio::time::sleep(RESOLVE_RETRY_PAUSE).await;
            }
            Err(status) => {
                tracing::warn!(%request_id, code = ?status.code(), "could not settle op: {}", status.message());
                return None;
            }
        }
    }
}

/// Statuses after which asking again can help.
fn retryable(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Aborted | Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted
    )
}

/// Writes a settled answer into the op. Its reply time is the settle reply's
/// arrival: an op found applied had certainly taken effect by then. True
/// when the op had taken effect (it took a sequence number).
fn apply(rec: &mut Recorder, f: Failure, result: &pb::OperationResult, at: Instant) -> bool {
    let recv_ns = rec.clock_ns(at);
    let Some(op) = rec.ops.get_mut(f.op as usize) else {
        return false;
    };
    op.outcome = outcome_of(result.outcome);
    if op.outcome == Outcome::Unknown {
        return false;
    }
    op.resolved = true;
    op.recv_ns = recv_ns;
    op.balance = result.balance;
    op.sequence = result.sequence;
    if let Ok(i) = rec.legs.binary_search_by_key(&f.op, |leg| leg.op) {
        rec.legs[i].to_balance = result.to_balance;
        rec.legs[i].to_sequence = result.to_sequence;
    }
    matches!(op.outcome, Outcome::Approved | Outcome::InsufficientFunds)
}

/// Reads every account's final balance and sequence (`None` where it fails).
pub async fn final_states(channel: &Channel, names: &Names, initial_balance: u64) -> Vec<AccountState> {
    let mut client = BankClient::new(channel.clone());
    let mut states = Vec::with_capacity(names.accounts.len());
    for id in &names.accounts {
        let mut request = Request::new(pb::GetBalanceRequest {
            account_id: id.clone(),
        });
        request.set_timeout(SETTLE_CALL_TIMEOUT);
        let account = client
            .get_balance(request)
            .await
            .ok()
            .map(tonic::Response::into_inner);
        states.push(AccountState {
            account_id: id.clone(),
            initial_balance,
            final_balance: account.as_ref().map(|a| a.balance),
            final_sequence: account.as_ref().map(|a| a.sequence),
        });
    }
    states
}

/// Moves the workers' records into one history (the recorders keep their
/// histograms and counts; their op buffers are emptied, not copied).
pub fn history(recorders: &mut [Recorder], accounts: Vec<AccountState>) -> History {
    let total: usize = recorders.iter().map(|r| r.ops.len()).sum();
    let mut history = History {
        accounts,
        ops: Vec::with_capacity(total),
        transfers: Vec::new(),
    };
    for rec in recorders {
        let offset = u32::try_from(history.ops.len()).unwrap_or(u32::MAX);
        history.ops.append(&mut rec.ops);
        rec.ops.shrink_to_fit();
        history.transfers.extend(rec.legs.iter().map(|leg| {
            let mut leg = *leg;
            leg.op = leg.op.saturating_add(offset);
            leg
        }));
    }
    history
}
