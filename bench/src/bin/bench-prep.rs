//! Prepares and checks an h2load run against a bank.v1 server: opens the
//! account (`--open`), writes one gRPC-framed `WithdrawRequest` (the 5-byte
//! prefix, then the protobuf) to `--frame` for `h2load -d FRAME`, and prints
//! the account's balance and sequence as JSON (`--show`), which proves how
//! many withdrawals the server really applied (h2load cannot read gRPC
//! trailers). The request carries no `request_id`, so the server stores
//! nothing per op (stress-client sends one).

use std::path::PathBuf;
use std::time::Duration;

use bank::v1 as pb;
use bank::v1::bank_client::BankClient;
use clap::Parser;
use prost::Message;

/// Open an account and write an h2load request body.
#[derive(Debug, Parser)]
#[command(name = "bench-prep")]
struct Args {
    /// Server to open the account on.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    target: String,
    /// Account to open and withdraw from.
    #[arg(long, default_value = "bench-hot")]
    account: String,
    /// Opening balance: large, so that every withdrawal is approved.
    #[arg(long, default_value_t = 1_000_000_000_000_000)]
    balance: u64,
    /// Amount of each withdrawal.
    #[arg(long, default_value_t = 1)]
    amount: u64,
    /// Where to write the framed request.
    #[arg(long)]
    frame: Option<PathBuf>,
    /// Open the account first.
    #[arg(long)]
    open: bool,
    /// Print `{"balance":…,"sequence":…}` of the account at the end.
    #[arg(long)]
    show: bool,
}

/// The gRPC length-prefixed message: flag 0 (uncompressed), u32 BE length, bytes.
fn grpc_frame(message: &impl Message) -> Vec<u8> {
    let body = message.encode_to_vec();
    let len = u32::try_from(body.len()).expect("a small message");
    let mut frame = Vec::with_capacity(5 + body.len());
    frame.push(0);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if let Some(path) = &args.frame {
        let request = pb::WithdrawRequest {
            account_id: args.account.clone(),
            amount: args.amount,
            request_id: String::new(),
            wait_for_funds: false,
        };
        std::fs::write(path, grpc_frame(&request))?;
    }
    if !(args.open || args.show) {
        return Ok(());
    }
    let channel = tonic::transport::Endpoint::from_shared(args.target.clone())?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    let mut client = BankClient::new(channel);
    if args.open {
        client
            .open_account(pb::OpenAccountRequest {
                account_id: args.account.clone(),
                initial_balance: args.balance,
            })
            .await?;
    }
    if args.show {
        let account = client
            .get_balance(pb::GetBalanceRequest {
                account_id: args.account.clone(),
            })
            .await?
            .into_inner();
        println!(
            "{{\"balance\":{},\"sequence\":{}}}",
            account.balance, account.sequence
        );
    }
    Ok(())
}
