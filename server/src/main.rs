//! The `bank-server` binary: parse flags, set up tracing, build the runtime,
//! bind, and hand over to `bank_server::run` until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;

use bank_server::cli::Args;
use clap::Parser;
use tokio::net::{TcpListener, TcpSocket};
use tracing::{error, info};

/// Connections the kernel may hold completed for the gRPC port before the
/// accept loop takes them (capped by `net.core.somaxconn`). std's and tokio's
/// 128 overflows when a burst of sockets arrives at once (a thousand idle
/// ones, or every client reconnecting after a restart): the kernel then drops
/// the handshake's last ACK and the client, which thinks it is connected,
/// waits for SYN-ACK retransmits (1 s, 3 s, 7 s ...) before the server sees it.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds the gRPC port with [`LISTEN_BACKLOG`] (and SO_REUSEADDR, as
/// `TcpListener::bind` sets it).
fn bind_grpc(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Binds every port the flags ask for, before anything is logged as
/// listening; a failure names the flag and the address ("--metrics-listen
/// 127.0.0.1:9464: cannot listen: Address already in use").
async fn bind_all(args: &Args) -> Result<bank_server::Listeners, String> {
    let cannot =
        |flag: &str, addr: SocketAddr, e: std::io::Error| format!("{flag} {addr}: cannot listen: {e}");
    let grpc = bind_grpc(args.listen).map_err(|e| cannot("--listen", args.listen, e))?;
    let metrics = match args.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| cannot("--metrics-listen", addr, e))?,
        ),
        None => None,
    };
    Ok(bank_server::Listeners { grpc, metrics })
}

/// mimalloc: ~10% more requests per CPU-second than glibc malloc here, whose
/// free-list consolidation shows up in profiles of the gRPC path (bench/).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    bank_server::observe::logging::init_with("info", args.log_format);
    let config = match args.config() {
        Ok(config) => config,
        Err(e) => {
            error!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(config.max_blocking_threads)
        .build();
    let result = runtime.map_err(Into::into).and_then(|rt| {
        rt.block_on(async {
            // Signals are caught from here on: one during startup still drains cleanly.
            let shutdown = bank_server::signal::shutdown();
            let listeners = bind_all(&args).await?;
            let grpc = listeners.grpc.local_addr()?;
            info!(addr = %grpc, delay = ?config.ledger.processing_delay, "bank-server listening");
            if let Some(m) = &listeners.metrics {
                info!(addr = %m.local_addr()?, "metrics at http://{}/metrics", m.local_addr()?);
            }
            bank_server::serve(listeners, config, shutdown).await
        })
    });
    match result {
        Ok(()) => {
            info!("bank-server stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!("bank-server failed: {e}");
            ExitCode::from(1)
        }
    }
}
