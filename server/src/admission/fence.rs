//! Records the request id of a call that was dropped before it reached the
//! ledger (its deadline passed or its client left while it queued at the
//! gate) as not applied, so a late copy of it can never take effect.
//!
//! The fence is itself an op on the account: it is admitted at the account's
//! gate (waiting there as a future, at no thread cost) before it takes a
//! blocking-pool thread, so cancelled calls cannot pile up an unbounded queue
//! in front of the pool. When the gate is full the fence is skipped: the id
//! stays unseen, and a later `GetOperation` fences it then.

use std::future::Future;
use std::sync::Arc;

use crate::admission::gate::Gate;
use crate::backend::api::{AccountRef, Backend};
use crate::backend::runner::blocking;

/// Armed from lookup until the op is handed to the blocking pool. It only
/// borrows what it would need: nearly every call is admitted and disarms
/// it, so the copies (an id string, three shared counts) are made only by
/// a fence that fires.
#[derive(Debug)]
pub struct Fence<'a> {
    armed: Option<Armed<'a>>,
}

/// What a fired fence needs, borrowed from the call.
#[derive(Debug)]
struct Armed<'a> {
    backend: &'a Arc<dyn Backend>,
    account: &'a AccountRef,
    gate: &'a Arc<Gate>,
    request_id: &'a str,
}

/// [`Armed`], owned by the task that fences.
struct Fired {
    backend: Arc<dyn Backend>,
    account: AccountRef,
    gate: Arc<Gate>,
    request_id: String,
}

impl<'a> Fence<'a> {
    /// A fence for `request_id` on `account` (behind `gate`); inert for an empty id.
    pub fn new(
        backend: &'a Arc<dyn Backend>,
        account: &'a AccountRef,
        gate: &'a Arc<Gate>,
        request_id: &'a str,
    ) -> Self {
        let armed = (!request_id.is_empty()).then_some(Armed {
            backend,
            account,
            gate,
            request_id,
        });
        Fence { armed }
    }

    /// Awaits `fut` (the wait at the gate). If the call is dropped meanwhile,
    /// the fence fires; once `fut` finishes, either way, it is disarmed: an
    /// admitted op is recorded by the ledger, a refused one changed nothing.
    pub async fn around<F: Future>(mut self, fut: F) -> F::Output {
        let out = fut.await;
        self.armed = None;
        out
    }
}

impl Drop for Fence<'_> {
    fn drop(&mut self) {
        let Some(armed) = self.armed.take() else {
            return;
        };
        // Without a runtime (process teardown) there is nobody left to send a late copy.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(fire(Fired {
                backend: Arc::clone(armed.backend),
                account: armed.account.clone(),
                gate: Arc::clone(armed.gate),
                request_id: armed.request_id.to_owned(),
            }));
        }
    }
}

/// Passes the gate, then fences the id on a blocking-pool thread.
async fn fire(fired: Fired) {
    let Ok(admission) = fired.gate.admit().await else {
        tracing::debug!(request_id = %fired.request_id, "fence skipped: the account's gate is full");
        return;
    };
    let Fired {
        backend,
        account,
        request_id,
        ..
    } = fired;
    // An error (say the id raced in meanwhile) leaves the ledger as it is.
    let _ = blocking(move || {
        let _admitted = admission;
        backend.operation(&account, &request_id)
    })
    .await;
}
