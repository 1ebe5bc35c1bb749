//! The `bank.v1` wire contract as Rust: messages, the tonic client and server
//! generated from `proto/bank/v1/bank.proto`, and the encoded descriptor set that
//! server reflection serves. Every other crate talks to the wire through this one.

/// Generated code for package `bank.v1`.
pub mod v1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("bank.v1");
}

/// The encoded `FileDescriptorSet` of `bank.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("bank_descriptor");

/// The fully qualified service name, as health checks and reflection name it.
pub const SERVICE_NAME: &str = "bank.v1.Bank";
