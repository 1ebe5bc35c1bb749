//! After the load: settle every op whose call failed by asking the server
//! (`GetOperation`, which also fences the id so a late copy can never apply).
//! "Settle" means this and only this in the client.
//!
//! Many asks run at once over all the run's connections ([`Calls`]), each
//! bounded by `--timeout` on the client's clock, the phase by
//! `--resolve-timeout` (retries stop then; an ask already sent may take one
//! more `--timeout`). An op not known by then stays unknown (unresolved), and
//! the checker judges with what it has.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use crate::transport::Bank;
use bank::v1 as pb;
use bank_checker::{Op, Outcome, TransferLeg};
use tonic::{Code, Status};

use crate::after_run::{retryable, Calls};
use crate::bound::within;
use crate::drive::Names;
use crate::fanout::fan_out;
use crate::progress::PhaseBar;
use crate::recorder::{outcome_of, Failure, Recorder};
use crate::request_id::RequestId;

/// `GetOperation` calls in flight at once while settling, over all connections.
const RESOLVE_CONCURRENCY: usize = 256;
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

/// An unknown op to ask about: the caller's key for it (which recorder and
/// failure record, or which op of a history), its account and request id.
pub(crate) type Ask<K> = (K, String, String);
/// A settled op: its key, the answer and its arrival.
pub(crate) type Answer<K> = (K, (pb::OperationResult, Instant));
/// What the asks about one op said besides a final answer: [`Op::ABORTED`]
/// (an ask answered ABORTED), [`Op::LOOKUP_NOT_FOUND`] (the last answered
/// NOT_FOUND), for the checker to judge against the contract.
pub(crate) type Note<K> = (K, u8);
/// A recorder's op: the recorder's number and the op's failure record.
type InRecorder = (usize, Failure);

/// What asking about one op got: the final answer or the last status, and
/// the flags to note.
struct Asked {
    answer: Result<(pb::OperationResult, Instant), Status>,
    flags: u8,
}

/// Settles failed ops in place; returns the counts. Asks stop at `calls.until`.
pub async fn resolve(calls: &Calls, names: &Names, recorders: &mut [Recorder], bar: &PhaseBar) -> Settlement {
    let asks = unknown_ops(names, recorders);
    let mut settlement = Settlement {
        indeterminate: asks.len() as u64,
        ..Settlement::default()
    };
    let (answers, notes) = ask_all(calls, asks, bar).await;
    for ((r, f), flags) in notes {
        if let Some(op) = recorders[r].ops.get_mut(f.op as usize) {
            op.flags |= flags;
        }
    }
    for ((r, f), (result, at)) in answers {
        let asked_id = RequestId::op(&names.run_id, f.worker, f.number).to_string();
        let rec = &mut recorders[r];
        let recv_ns = rec.clock_ns(at);
        let (op, legs) = (rec.ops.get_mut(f.op as usize), &mut rec.legs);
        settlement.resolved_applied += u64::from(apply(op, legs, f.op, (&result, &asked_id), recv_ns));
        settlement.resolved += 1;
    }
    settlement
}

/// The request ids of the ops whose outcome is still unknown, numbered as
/// [`crate::recorder::history`] numbers the ops (sorted): for `--history`,
/// so `check --target` can ask about them once every process has finished.
pub fn still_unknown(names: &Names, recorders: &[Recorder]) -> Vec<(u32, String)> {
    let mut first_op = Vec::with_capacity(recorders.len());
    let mut total = 0u32;
    for rec in recorders {
        first_op.push(total);
        total = total.saturating_add(u32::try_from(rec.ops.len()).unwrap_or(u32::MAX));
    }
    let mut ids: Vec<(u32, String)> = unknown_ops(names, recorders)
        .into_iter()
        .map(|((r, f), _, id)| (first_op[r].saturating_add(f.op), id))
        .collect();
    ids.sort_unstable_by_key(|(op, _)| *op);
    ids.dedup_by_key(|(op, _)| *op);
    ids
}

/// The failed ops whose outcome is still unknown, and what to ask about each.
fn unknown_ops(names: &Names, recorders: &[Recorder]) -> Vec<Ask<InRecorder>> {
    recorders
        .iter()
        .enumerate()
        .flat_map(|(r, rec)| rec.failures.iter().map(move |f| (r, rec, *f)))
        // A failed op whose duplicate send got the final answer needs no asking.
        .filter(|(_, rec, f)| {
            rec.ops
                .get(f.op as usize)
                .is_some_and(|op| op.outcome == Outcome::Unknown)
        })
        .map(|(r, rec, f)| {
            let account = account_of(names, rec, f);
            let id = RequestId::op(&names.run_id, f.worker, f.number).to_string();
            ((r, f), account, id)
        })
        .collect()
}

/// Asks about every op, many at once, until the hard stop; the final
/// answers, and the notes for the checker (a GetOperation answered NOT_FOUND
/// leaves the op unknown, but is recorded as such, not only logged).
pub(crate) async fn ask_all<K: Copy + Send + 'static>(
    calls: &Calls,
    asks: Vec<Ask<K>>,
    bar: &PhaseBar,
) -> (Vec<Answer<K>>, Vec<Note<K>>) {
    let (count, mut pending) = (asks.len(), asks.into_iter());
    let (mut answers, mut unsettled) = (Vec::new(), Unsettled::default());
    let mut notes = Vec::new();
    let bounds = (calls.timeout, calls.until);
    let ask_next = |i: usize| {
        let (clients, next) = (calls.from(i), pending.next());
        async move {
            let (key, account, request_id) = next?;
            Some((key, ask(clients, bounds, account, request_id).await))
        }
    };
    let collect = |answer: Option<(K, Asked)>| {
        bar.inc();
        let Some((key, asked)) = answer else {
            return ControlFlow::Continue(());
        };
        let mut flags = asked.flags;
        match asked.answer {
            Ok(answer) => answers.push((key, answer)),
            Err(status) => {
                if status.code() == Code::NotFound {
                    flags |= Op::LOOKUP_NOT_FOUND;
                }
                unsettled.add(status);
            }
        }
        if flags != 0 {
            notes.push((key, flags));
        }
        ControlFlow::Continue(())
    };
    let asking = fan_out(count, RESOLVE_CONCURRENCY, ask_next, collect);
    // An ask still in flight at the hard stop is aborted: its op stays unresolved.
    let _ = tokio::time::timeout_at(calls.hard_stop().into(), asking).await;
    unsettled.cut = (count as u64).saturating_sub(unsettled.count + answers.len() as u64);
    unsettled.warn();
    (answers, notes)
}

fn account_of(names: &Names, rec: &Recorder, f: Failure) -> String {
    // Failures name ops of this recorder; anything else is a stress-client bug.
    let op = rec.ops.get(f.op as usize).expect("a failure names a recorded op");
    names.account(op.account)
}

/// Asks until a server gives a final answer or `until` passes, each call
/// bounded by `timeout`; after a retryable failure the next ask goes over
/// the next connection (so a dead server's ops are settled by the others).
/// An ABORTED answer (the id belongs to a withdrawal still waiting) is
/// asked again too, and noted for the checker.
async fn ask(
    clients: Vec<Bank>,
    (timeout, until): (Duration, Instant),
    account_id: String,
    request_id: String,
) -> Asked {
    let mut flags = 0;
    let mut rotation = clients.into_iter().cycle();
    let Some(mut client) = rotation.next() else {
        let answer = Err(Status::internal("no connection"));
        return Asked { answer, flags };
    };
    loop {
        let message = pb::GetOperationRequest {
            account_id: account_id.clone(),
            request_id: request_id.clone(),
        };
        let call = client.get_operation(message);
        let reply = within(timeout, call).await;
        if let Err(status) = &reply {
            flags |= u8::from(status.code() == Code::Aborted) * Op::ABORTED;
        }
        match reply {
            Ok(reply) => {
                return Asked {
                    answer: Ok((reply, Instant::now())),
                    flags,
                }
            }
            Err(status) if retryable(&status) && Instant::now() < until => {
                tokio::time::sleep(RESOLVE_RETRY_PAUSE).await;
                client = rotation.next().unwrap_or(client);
            }
            Err(status) => {
                return Asked {
                    answer: Err(status),
                    flags,
                }
            }
        }
    }
}

/// The asks that got no final answer: how many, and the first one's status;
/// and how many were still unanswered (or not yet sent) at the hard stop.
#[derive(Debug, Default)]
struct Unsettled {
    count: u64,
    first: Option<Status>,
    cut: u64,
}

impl Unsettled {
    fn add(&mut self, status: Status) {
        self.count += 1;
        self.first.get_or_insert(status);
    }

    /// One line for all of them (a server that stopped answering would
    /// otherwise print one per op).
    fn warn(&self) {
        if let Some(status) = &self.first {
            let count = self.count;
            tracing::warn!(code = ?status.code(), "{count} op(s) could not be settled; first: {}", status.message());
        }
        if self.cut > 0 {
            tracing::warn!(
                "{} op(s) were still unsettled when --resolve-timeout ran out",
                self.cut
            );
        }
    }
}

/// Writes a settled answer into `op`, number `index` (its transfer leg, if
/// any, in `legs`, sorted by op; nothing when `op` is none). Its reply time becomes `recv_ns`, the
/// settle reply's arrival: an op found applied had certainly taken effect by
/// then. True when the op had taken effect (it took a sequence number). An
/// answer carrying another request id than the one asked about is marked
/// [`Op::WRONG_ID`] (a `protocol` violation).
pub(crate) fn apply(
    op: Option<&mut Op>,
    legs: &mut [TransferLeg],
    index: u32,
    (result, asked_id): (&pb::OperationResult, &str),
    recv_ns: u64,
) -> bool {
    let Some(op) = op else {
        return false;
    };
    if result.request_id != asked_id {
        op.flags |= Op::WRONG_ID;
    }
    op.outcome = outcome_of(result.outcome);
    if op.outcome == Outcome::Unknown {
        return false;
    }
    op.resolved = true;
    if result.replayed {
        op.flags |= Op::REPLAYED;
    }
    op.recv_ns = recv_ns;
    op.balance = result.balance;
    op.sequence = result.sequence;
    if let Ok(i) = legs.binary_search_by_key(&index, |leg| leg.op) {
        legs[i].to_balance = result.to_balance;
        legs[i].to_sequence = result.to_sequence;
    }
    matches!(op.outcome, Outcome::Approved | Outcome::InsufficientFunds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use bank_checker::Kind;

    use crate::progress::Live;

    fn op(outcome: Outcome) -> Op {
        Op {
            account: 0,
            kind: Kind::Withdraw,
            outcome,
            resolved: false,
            flags: 0,
            amount: 1,
            send_ns: 0,
            recv_ns: u64::MAX,
            balance: 0,
            sequence: 0,
        }
    }

    /// The ids `--history` writes name the ops as the history numbers them
    /// (recorders one after the other), and only those still unknown.
    #[test]
    fn still_unknown_numbers_ops_as_the_history_does() {
        let start = Instant::now();
        let live = Arc::new(Live::default());
        let mut recs: Vec<Recorder> = (0..2)
            .map(|w| Recorder::new(w, start, start, None, live.clone()))
            .collect();
        recs[0].ops = vec![op(Outcome::Approved), op(Outcome::Unknown), op(Outcome::Approved)].into();
        // Op 2 failed but was settled since (by its duplicate's answer).
        recs[0].failures = vec![
            Failure {
                op: 1,
                worker: 0,
                number: 5,
            },
            Failure {
                op: 2,
                worker: 0,
                number: 6,
            },
        ];
        recs[1].ops = vec![op(Outcome::Unknown)].into();
        recs[1].failures = vec![Failure {
            op: 0,
            worker: 1,
            number: 0x1f,
        }];
        let names = Names {
            run_id: "r".into(),
            accounts: vec!["a".into()],
        };
        let want = vec![(1, "r-0-5".to_owned()), (3, "r-1-1f".to_owned())];
        assert_eq!(still_unknown(&names, &recs), want);
    }
}
