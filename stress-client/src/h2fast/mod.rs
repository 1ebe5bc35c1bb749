//! The load's fast path: money ops (unary `Withdraw`, `Deposit`, `Transfer`
//! and the `WithdrawStream`) spoken over a minimal HTTP/2 client of our own
//! ([`wire`]: one task per connection, pre-built request heads sent as HPACK
//! indices, every call of a runtime turn in one write) instead of tonic's
//! client stack, so the load generator spends a few µs of CPU per op rather
//! than tens — CPU a server on the same cores would otherwise lose.
//! Everything off the hot path (setup, reads, retries, settling) stays on
//! tonic. `http://` and `https://` ([`dial`]: rustls, ALPN h2).
//!
//! What is sent and how answers are read follows gRPC over HTTP/2, and
//! every failure comes back as the `tonic::Status` tonic's client would
//! have produced, so ops are recorded and checked exactly as before.

pub mod backoff;
pub mod conn;
pub mod dial;
pub mod framing;
pub mod reconnect;
pub mod stream;
pub mod unary;
pub mod wire;

pub use conn::{connect, CallHeaders, Conn, FastCall};
pub use stream::Bidi;
