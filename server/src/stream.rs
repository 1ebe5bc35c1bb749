//! `WithdrawStream`: one task per stream reads requests in order, runs each
//! through [`Ops::withdraw`] and sends one answer per request, in order. The
//! first error ends the stream with its status after all earlier answers.

use std::pin::Pin;
use std::sync::Arc;

use bank::v1 as pb;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use crate::call::Call;
use crate::ledger::LedgerError;
use crate::ops::Ops;
use crate::telemetry::{Method, Telemetry};

/// The answer stream handed to tonic.
pub type ResultStream = Pin<Box<dyn Stream<Item = Result<pb::OperationResult, Status>> + Send>>;

/// Starts serving one stream; answers flow through a channel of `buffer` items.
pub fn withdraw_stream(
    ops: Arc<Ops>,
    call: Call,
    inbound: Streaming<pb::WithdrawRequest>,
    buffer: usize,
    telemetry: Telemetry,
) -> ResultStream {
    let (tx, rx) = mpsc::channel(buffer.max(1));
    tokio::spawn(serve(ops, call, inbound, tx, telemetry));
    Box::pin(ReceiverStream::new(rx))
}

type Sender = mpsc::Sender<Result<pb::OperationResult, Status>>;

async fn serve(
    ops: Arc<Ops>,
    call: Call,
    mut inbound: Streaming<pb::WithdrawRequest>,
    tx: Sender,
    telemetry: Telemetry,
) {
    loop {
        let request = tokio::select! {
            next = inbound.next() => next,
            // The client went away: stop reading, abandon what is queued.
            () = tx.closed() => return,
            // Shutdown, and no call left in flight: an idle stream is ended,
            // or it would hold the transport open until the grace period ends.
            () = ops.drain().drained() => Some(Err(LedgerError::ShuttingDown.into())),
        };
        let Some(request) = request else { return };
        let answer = match request {
            Ok(request) => answer(&ops, &call, request, &tx, &telemetry).await,
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

/// Runs one withdrawal, or gives up (`None`) if the client leaves meanwhile.
async fn answer(
    ops: &Ops,
    call: &Call,
    request: pb::WithdrawRequest,
    tx: &Sender,
    telemetry: &Telemetry,
) -> Option<Result<pb::OperationResult, Status>> {
    let observed = telemetry.start(Method::WithdrawStream, &request.account_id, &request.request_id);
    tokio::select! {
        result = ops.withdraw(request.into(), call) => {
            let result = result.map_err(Status::from);
            observed.finish_op(&result);
            Some(result.map(|r| ops.answers().wire(r)))
        }
        () = tx.closed() => None,
    }
}
