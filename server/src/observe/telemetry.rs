//! Per-call bookkeeping of the bank service: the access log (one `debug` line
//! per call, or per message of a stream) and the call metrics (latency,
//! errors, and first applications by outcome). Replays and `GetOperation`
//! answers are never counted as operations: only first applications are. A
//! call dropped before it answered (client gone) is logged and counted as
//! `Cancelled`.

use std::sync::Arc;
use std::time::Instant;

use tonic::Status;

use crate::backend::ledger::{OpResult, Outcome};
use crate::observe::metrics::Metrics;

/// The bank.v1 methods, named as in the proto (the `method` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    OpenAccount,
    GetBalance,
    Deposit,
    Withdraw,
    WithdrawStream,
    Transfer,
    GetOperation,
}

impl Method {
    /// The proto's method name.
    pub fn name(self) -> &'static str {
        match self {
            Method::OpenAccount => "OpenAccount",
            Method::GetBalance => "GetBalance",
            Method::Deposit => "Deposit",
            Method::Withdraw => "Withdraw",
            Method::WithdrawStream => "WithdrawStream",
            Method::Transfer => "Transfer",
            Method::GetOperation => "GetOperation",
        }
    }
}

/// The `outcome` label of an operation.
pub fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Approved => "approved",
        Outcome::InsufficientFunds => "insufficient_funds",
        Outcome::NotApplied => "not_applied",
    }
}

/// The `code` label of a status, e.g. `NotFound` (tonic's name of the code).
pub fn code_name(status: &Status) -> String {
    format!("{:?}", status.code())
}

/// Where calls are reported; cheap to clone. Without metrics only the
/// access log is written.
#[derive(Debug, Clone, Default)]
pub struct Telemetry {
    metrics: Option<Arc<Metrics>>,
}

/// One call being served; report it once with a `finish_*` method.
#[derive(Debug)]
pub struct Observed {
    metrics: Option<Arc<Metrics>>,
    method: Method,
    account: String,
    request_id: String,
    /// When it started; read only if someone will see its latency (the
    /// metrics or the access line): two clock reads a call saved otherwise.
    started: Option<Instant>,
    /// Set once reported; an unreported call was cancelled (its client left).
    reported: bool,
}

impl Telemetry {
    /// Telemetry that also updates `metrics`.
    pub fn with_metrics(metrics: Arc<Metrics>) -> Self {
        Telemetry {
            metrics: Some(metrics),
        }
    }

    /// The metrics, if any.
    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.metrics.as_ref()
    }

    /// Starts observing a call of `method` on `account` with `request_id`.
    pub fn start(&self, method: Method, account: &str, request_id: &str) -> Observed {
        // The ids are kept for the access line only: not copied (two
        // allocations a call) while that line is filtered out.
        let logged = tracing::enabled!(target: "bank_server::access", tracing::Level::DEBUG);
        let kept = |id: &str| if logged { id.to_owned() } else { String::new() };
        Observed {
            metrics: self.metrics.clone(),
            method,
            account: kept(account),
            request_id: kept(request_id),
            started: (logged || self.metrics.is_some()).then(Instant::now),
            reported: false,
        }
    }
}

impl Observed {
    /// A money-moving op finished: a first application counts by outcome.
    pub fn finish_op(self, result: &Result<OpResult, Status>) {
        if let (Ok(r), Some(m)) = (result, &self.metrics) {
            if !r.replayed {
                m.operation(self.method.name(), outcome_name(r.outcome));
            }
        }
        let outcome = result
            .as_ref()
            .ok()
            .map(|r| (outcome_name(r.outcome), r.replayed));
        self.finish(result.as_ref().err(), outcome);
    }

    /// Any other call finished (`outcome` none: it has no outcome).
    pub fn finish_call<T>(self, result: &Result<T, Status>) {
        self.finish(result.as_ref().err(), None);
    }

    fn finish(mut self, error: Option<&Status>, outcome: Option<(&str, bool)>) {
        self.report(error, outcome);
    }

    fn report(&mut self, error: Option<&Status>, outcome: Option<(&str, bool)>) {
        self.reported = true;
        let took = self.started.map(|s| s.elapsed()).unwrap_or_default();
        let method = self.method.name();
        if let Some(m) = &self.metrics {
            m.rpc_latency(method, took);
            if let Some(status) = error {
                m.rpc_error(method, &code_name(status));
            }
        }
        let code = error.map(code_name);
        tracing::debug!(
            target: "bank_server::access",
            method,
            account = %self.account,
            request_id = %self.request_id,
            outcome = outcome.map(|(o, _)| o),
            replayed = outcome.map(|(_, r)| r),
            code = code.as_deref().unwrap_or("Ok"),
            latency_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            "call"
        );
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        // The handler was dropped mid-call: the client cancelled or its deadline passed.
        if !self.reported {
            self.report(Some(&Status::cancelled("the client went away")), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ledger::LedgerError;
    use crate::observe::metrics::{ERROR_CODES, METHODS};

    #[test]
    fn every_method_and_error_code_a_call_can_report_is_zeroed_at_start() {
        use Method::*;
        for method in [
            OpenAccount,
            GetBalance,
            Deposit,
            Withdraw,
            WithdrawStream,
            Transfer,
            GetOperation,
        ] {
            assert!(METHODS.contains(&method.name()), "{method:?}");
        }
        let s = String::new;
        let errors = [
            LedgerError::InvalidArgument(s()),
            LedgerError::AccountNotFound(s()),
            LedgerError::AccountExists(s()),
            LedgerError::RequestIdConflict {
                account_id: s(),
                request_id: s(),
            },
            LedgerError::BalanceOverflow {
                account_id: s(),
                amount: 1,
            },
            LedgerError::LimitReached(s()),
            LedgerError::InProgress(s()),
            LedgerError::OutcomeUnknown {
                account_id: s(),
                request_id: s(),
                forgotten: 1,
            },
            LedgerError::Internal(s()),
            LedgerError::Unavailable(s()),
            LedgerError::ShuttingDown,
        ];
        let statuses = errors.into_iter().map(Status::from);
        // Tokens (the auth layer's statuses) and a client that left.
        let others = [
            Status::unauthenticated(""),
            Status::permission_denied(""),
            Status::cancelled(""),
        ];
        for status in statuses.chain(others) {
            assert!(ERROR_CODES.contains(&code_name(&status).as_str()), "{status:?}");
        }
    }
}
