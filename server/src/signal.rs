//! The shutdown signal of the binary: the first SIGINT or SIGTERM.

use std::future::Future;

/// Starts listening for SIGINT (Ctrl-C) and SIGTERM *now* and returns a
/// future that resolves on the first of them. Listening from the call, not
/// from the first poll, means a signal that arrives while the server is still
/// starting up is caught (and shuts it down cleanly) instead of killing the
/// process with the default action. Call it inside the runtime, before binding.
pub fn shutdown() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        [SignalKind::terminate(), SignalKind::interrupt()].map(|kind| signal(kind).ok())
    };
    async move {
        #[cfg(unix)]
        {
            let [term, int] = signals;
            tokio::select! {
                () = recv(term) => {}
                () = recv(int) => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown signal received");
    }
}

/// The next delivery of `signal`; never, if it could not be registered.
#[cfg(unix)]
async fn recv(signal: Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(mut s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
