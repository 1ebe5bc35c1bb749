//! Observability: logging setup, the Prometheus metrics and their HTTP
//! endpoint, and the per-call access log and call metrics.
//! May import: the backend's plain types only (to name op kinds and errors).

pub mod db_metrics;
pub mod logging;
pub mod metrics;
pub mod metrics_http;
#[cfg(target_os = "linux")]
pub mod process;
pub mod telemetry;
