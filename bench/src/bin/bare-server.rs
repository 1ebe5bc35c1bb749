//! A bare tonic server for benchmark P4: it answers `bank.v1.Bank/Withdraw`
//! with an approved result and a process-wide sequence number, with no ledger,
//! no gate, no blocking pool. Same transport settings as `bank-server` (its
//! writes gathered per runtime turn too), so
//! `bank-server ÷ bare-server` (both driven by h2load) is the server's overhead.
//! Every other RPC is `UNIMPLEMENTED`. Bench-only: not part of the product.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use bank::v1 as pb;
use bank::v1::bank_server::{Bank, BankServer};
use bank_server::admission::coalesce::Coalesced;
use clap::Parser;
use futures::{Stream, TryStreamExt};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status, Streaming};

/// A bank.v1 server that only answers Withdraw, without a ledger.
#[derive(Debug, Parser)]
#[command(name = "bare-server")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:50071")]
    listen: SocketAddr,
}

/// The allocator bank-server uses, so the comparison is of the servers alone.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// bank-server's defaults, so the transports match.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
const MAX_CONCURRENT_STREAMS: u32 = 1024;

#[derive(Debug, Default)]
struct Bare {
    sequence: AtomicU64,
}

type Results = Pin<Box<dyn Stream<Item = Result<pb::OperationResult, Status>> + Send>>;

fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("bare-server answers Withdraw only"))
}

#[tonic::async_trait]
impl Bank for Bare {
    async fn open_account(
        &self,
        _: Request<pb::OpenAccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        unimplemented()
    }

    async fn get_balance(&self, _: Request<pb::GetBalanceRequest>) -> Result<Response<pb::Account>, Status> {
        unimplemented()
    }

    async fn deposit(&self, _: Request<pb::DepositRequest>) -> Result<Response<pb::OperationResult>, Status> {
        unimplemented()
    }

    async fn withdraw(
        &self,
        request: Request<pb::WithdrawRequest>,
    ) -> Result<Response<pb::OperationResult>, Status> {
        let w = request.into_inner();
        Ok(Response::new(pb::OperationResult {
            request_id: w.request_id,
            outcome: pb::Outcome::Approved.into(),
            balance: u64::MAX / 2,
            sequence: self.sequence.fetch_add(1, Ordering::Relaxed) + 1,
            ..Default::default()
        }))
    }

    type WithdrawStreamStream = Results;

    async fn withdraw_stream(
        &self,
        _: Request<Streaming<pb::WithdrawRequest>>,
    ) -> Result<Response<Results>, Status> {
        unimplemented()
    }

    async fn transfer(
        &self,
        _: Request<pb::TransferRequest>,
    ) -> Result<Response<pb::OperationResult>, Status> {
        unimplemented()
    }

    async fn get_operation(
        &self,
        _: Request<pb::GetOperationRequest>,
    ) -> Result<Response<pb::OperationResult>, Status> {
        unimplemented()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args = Args::parse();
    let service = BankServer::new(Bare::default())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!("bare-server listening on {}", args.listen);
    // bank-server's writes are gathered per runtime turn (`Coalesced`): so are these.
    let incoming = TcpListenerStream::new(listener).map_ok(|tcp| {
        let _ = tcp.set_nodelay(true);
        Coalesced::new(tcp)
    });
    tonic::transport::Server::builder()
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
