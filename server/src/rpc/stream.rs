//! `WithdrawStream`: one task per stream reads requests in order, runs each
//! through [`Ops::withdraw`] and sends one answer per request, in order. The
//! first error ends the stream with its status after all earlier answers.
//! With tokens, each message is first checked against the token file now
//! loaded: once a reload revoked or changed the stream's token, the next
//! message ends the stream UNAUTHENTICATED and nothing more is applied.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bank::v1 as pb;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use crate::admission::auth::{AuthError, Session};
use crate::admission::ops::Ops;
use crate::backend::ledger::{LedgerError, OpResult};
use crate::observe::telemetry::{Method, Telemetry};
use crate::rpc::call::Call;
use crate::rpc::owner::check_owner;

/// The answer stream handed to tonic.
pub type ResultStream = Pin<Box<dyn Stream<Item = Result<pb::OperationResult, Status>> + Send>>;

/// Starts serving one stream for `caller`; answers flow through a channel of `buffer` items.
pub fn withdraw_stream(
    ops: Arc<Ops>,
    call: Call,
    caller: Option<Session>,
    inbound: Streaming<pb::WithdrawRequest>,
    buffer: usize,
    telemetry: Telemetry,
) -> ResultStream {
    let (tx, rx) = mpsc::channel(buffer.max(1));
    let served = Served {
        ops,
        call,
        caller,
        telemetry,
    };
    tokio::spawn(serve(served, inbound, tx));
    Box::pin(ReceiverStream::new(rx))
}

type Sender = mpsc::Sender<Result<pb::OperationResult, Status>>;

/// What every message of one stream shares.
struct Served {
    ops: Arc<Ops>,
    call: Call,
    caller: Option<Session>,
    telemetry: Telemetry,
}

async fn serve(mut s: Served, mut inbound: Streaming<pb::WithdrawRequest>, tx: Sender) {
    // Made once per stream, not per message: each is a registration with a
    // `Notify` (a lock to add it, another to remove it), and a stream
    // serves thousands of messages a second (issue 22, bench P5).
    let ops = Arc::clone(&s.ops);
    let drained = ops.drain().drained();
    let closed = tx.closed();
    tokio::pin!(drained, closed);
    loop {
        // Biased, in the order written: a ready message is taken without
        // polling the other two (each poll of a `Notify` takes its lock),
        // and no random branch order is drawn per message (issue 22, P5).
        // Shutdown still ends a busy stream: its next op is refused.
        let request = tokio::select! {
            biased;
            next = inbound.next() => next,
            // The client went away: stop reading, abandon what is queued.
            () = &mut closed => return,
            // Shutdown, and no call left in flight: an idle stream is ended,
            // or it would hold the transport open until the grace period ends.
            () = &mut drained => Some(Err(LedgerError::ShuttingDown.into())),
        };
        let Some(request) = request else { return };
        let answer = match request {
            Ok(request) => match revoked(&mut s, &request) {
                Some(refused) => Some(Err(refused)),
                None => answer(&s, request, closed.as_mut()).await,
            },
            // A broken inbound stream (bad frame, too large) ends ours with its status.
            Err(status) => Some(Err(status)),
        };
        let Some(answer) = answer else { return };
        let last = answer.is_err();
        if tx.send(answer).await.is_err() || last {
            return;
        }
    }
}

/// The refusal of a message whose token a reload revoked or changed (and
/// counted as such), if it was.
fn revoked(s: &mut Served, request: &pb::WithdrawRequest) -> Option<Status> {
    let refused: AuthError = s.caller.as_mut()?.recheck().err()?;
    let result: Result<OpResult, Status> = Err(refused.into());
    s.telemetry
        .start(Method::WithdrawStream, &request.account_id, &request.request_id)
        .finish_op(&result);
    result.err()
}

/// Runs one withdrawal, or gives up (`None`) if the client leaves meanwhile.
/// One on another principal's account ends the stream, changing nothing.
async fn answer(
    s: &Served,
    request: pb::WithdrawRequest,
    closed: Pin<&mut impl Future<Output = ()>>,
) -> Option<Result<pb::OperationResult, Status>> {
    let observed = s
        .telemetry
        .start(Method::WithdrawStream, &request.account_id, &request.request_id);
    let caller = s.caller.as_ref().map(Session::principal);
    if let Err(status) = check_owner(&s.ops, caller, &request.account_id).await {
        let result: Result<OpResult, Status> = Err(status);
        observed.finish_op(&result);
        return Some(result.map(|r| s.ops.answers().wire(r)));
    }
    // Biased: an op that is done at once (the usual case) is answered
    // without polling `closed` too.
    tokio::select! {
        biased;
        result = s.ops.withdraw(request.into(), &s.call) => {
            let result = result.map_err(Status::from);
            observed.finish_op(&result);
            Some(result.map(|r| s.ops.answers().wire(r)))
        }
        () = closed => None,
    }
}
