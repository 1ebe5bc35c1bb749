//! Before the load: connect `--connections` HTTP/2 channels (one TCP
//! connection each) and open this run's fresh accounts.

use std::time::Duration;

use bank::v1 as pb;
use bank::v1::bank_client::BankClient;
use tonic::transport::{Channel, Endpoint};

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline of each setup call.
const SETUP_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens `count` separate connections to `endpoint`.
pub async fn connect(endpoint: &str, count: usize) -> Result<Vec<Channel>, String> {
    let endpoint = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|e| format!("bad --target {endpoint:?}: {e}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count {
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", endpoint.uri()))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// Opens every account in `ids` with `initial_balance`.
pub async fn open_accounts(channel: Channel, ids: &[String], initial_balance: u64) -> Result<(), String> {
    let mut client = BankClient::new(channel);
    for id in ids {
        let mut request = tonic::Request::new(pb::OpenAccountRequest {
            account_id: id.clone(),
            initial_balance,
        });
        request.set_timeout(SETUP_CALL_TIMEOUT);
        client
            .open_account(request)
            .await
            .map_err(|s| format!("OpenAccount {id:?} failed: {} {}", s.code(), s.message()))?;
    }
    Ok(())
}
