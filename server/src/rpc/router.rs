//! The one wiring of a bank server's services, used by startup and the tests:
//! the bank (behind the token check) with its message limits, gRPC health
//! (SERVING for `bank.v1.Bank` and ""), reflection v1 and v1alpha, and the
//! transport's limits: streams per connection, HTTP/2 keepalive. TLS and the
//! connection limits are the accept path's ([`crate::admission::conn`]).

use std::sync::Arc;

use bank::v1::bank_server::BankServer;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::Router;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use crate::admission::auth::{Auth, Authenticate};
use crate::admission::ops::Ops;
use crate::config::ServerConfig;
use crate::observe::telemetry::Telemetry;
use crate::rpc::service::BankService;

/// Any startup or transport failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The bank service as served: behind the token check.
pub type Bank = InterceptedService<BankServer<BankService>, Authenticate>;

/// A router serving `ops` as `config` says, and its health reporter (SERVING).
pub async fn router(
    ops: Arc<Ops>,
    config: &ServerConfig,
    telemetry: Telemetry,
    auth: Option<Arc<Auth>>,
) -> Result<(Router, HealthReporter), BoxError> {
    let service = BankService::new(ops, config.stream_response_buffer).with_telemetry(telemetry);
    let bank = BankServer::new(service)
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(config.max_message_bytes);
    let bank: Bank = InterceptedService::new(bank, Authenticate::new(auth));
    let (health, health_service) = tonic_health::server::health_reporter();
    set_health(&health, ServingStatus::Serving).await;
    let router = Server::builder()
        .max_concurrent_streams(config.max_concurrent_streams_per_connection)
        .http2_keepalive_interval(Some(config.http2_keepalive_interval))
        .http2_keepalive_timeout(Some(config.http2_keepalive_timeout))
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(bank);
    Ok((router, health))
}

/// Reflection over the bank and health descriptors (v1 and v1alpha share it).
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(bank::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// Sets the status of `bank.v1.Bank` and of the server as a whole ("").
pub async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status(bank::SERVICE_NAME, status).await;
    health.set_service_status("", status).await;
}
