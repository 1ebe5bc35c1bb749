//! Records the request id of a call that was dropped before it reached the
//! ledger (its deadline passed or its client left while it queued at the
//! gate) as not applied, so a late copy of it can never take effect.

use std::future::Future;
use std::sync::Arc;

use crate::ledger::{Account, Ledger};

/// Armed from lookup until the op is handed to the blocking pool.
#[derive(Debug)]
pub struct Fence {
    armed: Option<(Arc<Ledger>, Arc<Account>, String)>,
}

impl Fence {
    /// A fence for `request_id` on `account`; inert for an empty id.
    pub fn new(ledger: &Arc<Ledger>, account: &Arc<Account>, request_id: &str) -> Self {
        let armed = (!request_id.is_empty())
            .then(|| (Arc::clone(ledger), Arc::clone(account), request_id.to_owned()));
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

impl Drop for Fence {
    fn drop(&mut self) {
        let Some((ledger, account, request_id)) = self.armed.take() else {
            return;
        };
        // Locking blocks, so it runs on the blocking pool. Without a runtime
        // (process teardown) there is nobody left to send a late copy.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn_blocking(move || {
                // An error (say the id raced in meanwhile) leaves the ledger as it is.
                let _ = ledger.operation(&account, &request_id);
            });
        }
    }
}
