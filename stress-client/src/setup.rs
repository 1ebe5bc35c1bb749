//! Before the load: connect `--connections` HTTP/2 channels (one TCP
//! connection each) and open this run's fresh accounts, many at once over all
//! of them. Every call is bounded by `--timeout`; the first failure ends the
//! setup with a message that says what the server did (exit 2).

use std::ops::ControlFlow;
use std::time::Duration;

use bank::v1 as pb;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::bound::within;
use crate::fanout::fan_out;
use crate::progress::PhaseBar;
use crate::transport;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// OpenAccount calls in flight at once, over all connections: enough to
/// keep a server busy across its cores, few enough not to trip its
/// per-connection stream limit (commonly 100 or more per connection).
pub const SETUP_CONCURRENCY: usize = 256;

/// The multi-threaded runtime that every command's calls run on (the load
/// run, `setup`, `check --target`).
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// Opens `count` separate connections, spread round-robin over `targets`
/// (connection i goes to target i mod the number of targets).
pub async fn connect(targets: &[String], count: usize) -> Result<Vec<Channel>, String> {
    let mut endpoints = Vec::with_capacity(targets.len());
    for target in targets {
        transport::probe(target).await?;
        let endpoint = transport::endpoint(target)?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        endpoints.push((endpoint, target));
    }
    if endpoints.is_empty() {
        return Err("no server to connect to".into());
    }
    let mut channels = Vec::with_capacity(count);
    for i in 0..count {
        let (endpoint, target) = &endpoints[i % endpoints.len()];
        let channel = transport::connect(endpoint, target)
            .await
            .map_err(|e| format!("cannot connect to {target}: {}", transport::causes(&e)))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// Opens every account in `ids` with `initial_balance`, spreading the calls
/// over `channels`, each call bounded by `timeout`.
pub async fn open_accounts(
    channels: &[Channel],
    ids: &[String],
    initial_balance: u64,
    timeout: Duration,
    bar: &PhaseBar,
) -> Result<(), String> {
    let clients: Vec<_> = channels.iter().cloned().map(transport::bank).collect();
    if clients.is_empty() {
        return Err("no connection to open the accounts on".into());
    }
    let mut failed = None;
    let open = |i: usize| {
        let mut client = clients[i % clients.len()].clone();
        let message = pb::OpenAccountRequest {
            account_id: ids[i].clone(),
            initial_balance,
        };
        async move {
            // Bounded on our clock only: no deadline is sent, since a timer on
            // each side for each of a million calls costs a third of the setup.
            let reply = within(timeout, client.open_account(message)).await;
            reply.map(drop).map_err(|status| (i, status))
        }
    };
    fan_out(ids.len(), SETUP_CONCURRENCY, open, |reply| match reply {
        Ok(()) => {
            bar.inc();
            ControlFlow::Continue(())
        }
        // The first failure ends the setup; the calls still running are aborted.
        Err(failure) => {
            failed = Some(failure);
            ControlFlow::Break(())
        }
    })
    .await;
    failed.map_or(Ok(()), |(i, status)| Err(open_failed(&ids[i], &status, timeout)))
}

/// Why the setup stopped, in words.
fn open_failed(id: &str, status: &Status, timeout: Duration) -> String {
    // tonic's own deadline ends a call with CANCELLED; ours with DEADLINE_EXCEEDED.
    if matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled) {
        return format!(
            "the server accepted the connection but did not answer OpenAccount {id:?} within \
             {timeout:?} ({})",
            transport::status_text(status)
        );
    }
    format!(
        "OpenAccount {id:?} failed: {:?}: {}",
        status.code(),
        transport::status_text(status)
    )
}
