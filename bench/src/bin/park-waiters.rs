//! Parks withdrawals that wait for funds on a bank.v1 server and keeps them
//! parked until killed: opens `--accounts` empty accounts, then sends
//! `--per-account` `wait_for_funds` withdrawals to each (long deadline), over
//! enough connections to stay under the server's streams per connection.
//! The bench (case PW in bench/run.sh) reads the server's RSS before and
//! with them parked: the memory one parked waiter costs.

use std::time::Duration;

use bank::v1 as pb;
use bank::v1::bank_client::BankClient;
use clap::Parser;
use tonic::transport::{Channel, Endpoint};

/// Streams per connection, below the server's default of 1,024.
const STREAMS_PER_CONNECTION: usize = 512;

/// Park waiters and hold them.
#[derive(Debug, Parser)]
#[command(name = "park-waiters")]
struct Args {
    /// Server to park the waiters on.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    target: String,
    /// Empty accounts to open (named park-0, park-1, ...).
    #[arg(long, default_value_t = 10)]
    accounts: usize,
    /// Waiters per account.
    #[arg(long, default_value_t = 64)]
    per_account: usize,
}

async fn connect(target: &str) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(target.to_owned())?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut admin = BankClient::new(connect(&args.target).await?);
    let accounts: Vec<String> = (0..args.accounts).map(|i| format!("park-{i}")).collect();
    for id in &accounts {
        let open = pb::OpenAccountRequest {
            account_id: id.clone(),
            initial_balance: 0,
        };
        admin.open_account(open).await?;
    }
    let mut calls = tokio::task::JoinSet::new();
    let mut client = BankClient::new(connect(&args.target).await?);
    for (n, (id, j)) in accounts
        .iter()
        .flat_map(|id| (0..args.per_account).map(move |j| (id, j)))
        .enumerate()
    {
        if n > 0 && n % STREAMS_PER_CONNECTION == 0 {
            client = BankClient::new(connect(&args.target).await?);
        }
        let mut request = tonic::Request::new(pb::WithdrawRequest {
            account_id: id.clone(),
            amount: 1,
            request_id: format!("{id}-w{j}"),
            wait_for_funds: true,
        });
        request.set_timeout(Duration::from_secs(3600));
        let mut client = client.clone();
        calls.spawn(async move { client.withdraw(request).await.map(|_| ()) });
    }
    println!("sent {} waiting withdrawals", calls.len());
    // Held until killed; a call that ends early (refused) is reported.
    while let Some(done) = calls.join_next().await {
        if let Ok(Err(status)) = done {
            eprintln!("a waiter ended: {:?} {}", status.code(), status.message());
        }
    }
    Ok(())
}
