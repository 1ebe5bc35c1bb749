//! The one place where domain errors become gRPC statuses. Every handler
//! returns `LedgerError` and lets `?` convert it here, so wire codes stay
//! consistent across RPCs and match the table in the README and the proto.

use tonic::Status;

use crate::admission::auth::AuthError;
use crate::backend::ledger::LedgerError;

impl From<LedgerError> for Status {
    fn from(err: LedgerError) -> Self {
        let message = err.to_string();
        match err {
            LedgerError::InvalidArgument(_) => Status::invalid_argument(message),
            LedgerError::AccountNotFound(_) => Status::not_found(message),
            LedgerError::AccountExists(_) | LedgerError::RequestIdConflict { .. } => {
                Status::already_exists(message)
            }
            LedgerError::BalanceOverflow { .. } | LedgerError::OutcomeUnknown { .. } => {
                Status::failed_precondition(message)
            }
            LedgerError::LimitReached(_) => Status::resource_exhausted(message),
            LedgerError::InProgress(_) => Status::aborted(message),
            LedgerError::ShuttingDown | LedgerError::Unavailable(_) => Status::unavailable(message),
            LedgerError::Internal(_) => Status::internal(message),
        }
    }
}

impl From<AuthError> for Status {
    fn from(err: AuthError) -> Self {
        let message = err.to_string();
        match err {
            AuthError::Unauthenticated | AuthError::Revoked => Status::unauthenticated(message),
            AuthError::PermissionDenied(_) => Status::permission_denied(message),
        }
    }
}
