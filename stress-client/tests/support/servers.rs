//! Servers the stress-client's tests start on 127.0.0.1:0: a bound listener,
//! and a real bank-server with no processing delay.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

/// A listener on 127.0.0.1:0 and its address.
pub async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// A real bank server on 127.0.0.1:0 (no processing delay), running until the test ends.
pub async fn real_bank() -> SocketAddr {
    let (listener, addr) = listener().await;
    let mut config = bank_server::ServerConfig::default();
    config.ledger.processing_delay = Duration::ZERO;
    tokio::spawn(bank_server::run(listener, config, std::future::pending()));
    addr
}
