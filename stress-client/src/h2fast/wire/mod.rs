//! A minimal HTTP/2 client connection (RFC 9113) for the fast path's calls:
//! one task per connection moves the bytes, callers write their frames into
//! a shared buffer under one lock, request heads are pre-built and sent as
//! HPACK indices, answers are buffered as they arrive (flow control given
//! back at once). It speaks only what a gRPC client needs — no push, no
//! priorities, no server-initiated streams — and treats anything else the
//! protocol forbids as the connection's end, never as a panic.
//!
//! It imports nothing from the fast path above it (`conn`, `dial`, `unary`,
//! `stream`, `reconnect`): what both need — the call kinds ([`call`]) and how a
//! call's end reads as a status ([`status`]) — lives here.

pub mod call;
pub mod driver;
pub mod frame;
pub mod hpack;
mod hpack_decode;
mod huffman;
pub mod link;
mod recv;
pub mod status;

pub use link::{take_answer, Answer, End, Link, Refused, Slot, StreamRef, Waiting};
