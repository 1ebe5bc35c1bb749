//! What the server knows about one call: its deadline (from `grpc-timeout`)
//! and whether its client is gone (the handler future was dropped). The ledger
//! reads both, under the lock, to skip abandoned ops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::metadata::MetadataMap;

use crate::backend::ledger::{CallContext, Release};

/// The longest `grpc-timeout` value the spec allows: 8 digits.
const GRPC_TIMEOUT_MAX_DIGITS: usize = 8;

/// Lives as long as the handler; dropping it marks the call abandoned.
#[derive(Debug)]
pub struct Call {
    deadline: Option<Instant>,
    cancelled: Arc<AtomicBool>,
}

impl Call {
    /// A call whose deadline is read from the request's `grpc-timeout` header.
    pub fn from_metadata(metadata: &MetadataMap) -> Self {
        let timeout = metadata
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        Call {
            deadline: timeout.and_then(|t| Instant::now().checked_add(t)),
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The ledger's view of this call, giving back `release` before any wait.
    pub fn context(&self, release: Release) -> CallContext {
        CallContext::new(self.deadline, Arc::clone(&self.cancelled)).with_release(release)
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // Ops still queued for this call see the flag and are not applied.
        self.cancelled.store(true, Ordering::Release);
    }
}

/// Parses a `grpc-timeout` value such as `100m` or `5S`; `None` if malformed.
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if !value.is_ascii() {
        return None;
    }
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > GRPC_TIMEOUT_MAX_DIGITS {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    match unit {
        "H" => Some(Duration::from_secs(n.checked_mul(3600)?)),
        "M" => Some(Duration::from_secs(n.checked_mul(60)?)),
        "S" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_millis(n)),
        "u" => Some(Duration::from_micros(n)),
        "n" => Some(Duration::from_nanos(n)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_rejects_junk() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("9n"), Some(Duration::from_nanos(9)));
        for junk in ["", "m", "123456789S", "1x", "-1S", "é", "1.5S"] {
            assert_eq!(parse_grpc_timeout(junk), None, "{junk:?}");
        }
    }
}
