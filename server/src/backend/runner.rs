//! What a backend may run its ops on, as admission provides it: the
//! account's serial runner ([`Runner`], implemented by the admission gate)
//! and tokio's blocking pool ([`blocking`]). Batches of one account's
//! deposits and withdrawals ([`Batched`]) are formed by the runner and
//! applied by the backend's [`BatchApply`].

use std::sync::Arc;

use tokio::sync::oneshot;

use super::ledger::{BatchOp, CallContext, LedgerError, LedgerResult, OpResult, Pending};

/// A blocking op handed to a runner; it sends its own result back.
pub type Task = Box<dyn FnOnce() + Send>;

/// Applies a batch of one account's ops: one answer per op, in order (each
/// answered once synced, for a backend whose sync is awaited apart).
pub trait BatchApply: Send + Sync {
    fn apply(&self, ops: &mut [(BatchOp, CallContext)]) -> Vec<LedgerResult<Pending<OpResult>>>;
}

/// A deposit or withdrawal the runner may batch with its neighbours.
pub struct Batched {
    pub applier: Arc<dyn BatchApply>,
    pub op: BatchOp,
    pub ctx: CallContext,
    pub reply: oneshot::Sender<LedgerResult<Pending<OpResult>>>,
}

/// One account's serial runner: tasks run one after another, in order, on
/// one blocking-pool thread while any are queued.
pub trait Runner: Send + Sync {
    /// Queues `task`; returns at once. Needs a tokio runtime.
    fn submit(&self, task: Task);

    /// Queues a batchable op; the runner hands it, with the batchable ops
    /// queued right beside it, to its applier.
    fn submit_batched(&self, job: Batched);
}

/// Runs `op` on `runner`, after the tasks queued before it, and returns its result.
pub async fn run_on<T, F>(runner: &dyn Runner, op: F) -> LedgerResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> LedgerResult<T> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    runner.submit(Box::new(move || {
        // The caller may be gone (client left); the op has run regardless.
        let _ = tx.send(op());
    }));
    rx.await
        .map_err(|_| LedgerError::Internal("blocking task failed: the operation panicked".into()))?
}

/// Runs a batchable op on `runner` through `applier` and awaits its sync.
pub async fn run_batched(
    runner: &dyn Runner,
    applier: Arc<dyn BatchApply>,
    op: BatchOp,
    ctx: CallContext,
) -> LedgerResult<OpResult> {
    let (reply, rx) = oneshot::channel();
    runner.submit_batched(Batched {
        applier,
        op,
        ctx,
        reply,
    });
    let pending = rx
        .await
        .map_err(|_| LedgerError::Internal("blocking task failed: the batch panicked".into()))??;
    // The runner is free meanwhile: the next batch forms during this sync.
    pending.settled().await
}

/// Runs a blocking call on tokio's blocking pool; async workers never block.
pub async fn blocking<T, F>(f: F) -> LedgerResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> LedgerResult<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LedgerError::Internal(format!("blocking task failed: {e}")))?
}
