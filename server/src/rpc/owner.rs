//! The ownership check of `--auth-tokens`, shared by the unary handlers and
//! `WithdrawStream`: a call on an account is refused unless its caller
//! opened it. Runs before anything is recorded.

use tonic::Status;

use crate::admission::auth::{authorize, Principal};
use crate::admission::ops::Ops;
use crate::backend::ledger::LedgerError;

/// Refuses a call on `account_id` by a principal that did not open it
/// (nothing to check without tokens). An account that does not exist is
/// refused like another principal's (PERMISSION_DENIED), so that a caller
/// cannot probe which ids exist; a malformed id is INVALID_ARGUMENT for everyone.
pub(crate) async fn check_owner(
    ops: &Ops,
    caller: Option<&Principal>,
    account_id: &str,
) -> Result<(), Status> {
    if caller.is_none() {
        return Ok(());
    }
    let account = match ops.account(account_id).await {
        Ok(account) => Some(account),
        Err(LedgerError::AccountNotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    Ok(authorize(
        caller,
        account_id,
        account.as_ref().and_then(|a| a.owner()),
    )?)
}
