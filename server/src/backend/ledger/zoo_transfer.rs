//! BUG (zoo): non-atomic-transfer, the one zoo bug that needs whole accounts
//! (two monitors taken one after the other), apart from `zoo` so that the
//! account's hooks there need not know the account.

use super::account::Account;
use super::config::LedgerConfig;
use super::context::CallContext;
use super::delay::processing_delay;
use super::error::LedgerResult;
use super::op::{Attempt, Fingerprint, OpResult, Outcome, Transfer};
use super::pending::Pending;
use super::request_log::Lookup;

/// How the debit step of a non-atomic transfer ended.
enum Debit {
    /// Answered without a debit (a replay or an abandoned call).
    Finished(Pending<OpResult>),
    /// The source's part is done; the target's is still to come.
    Debited(OpResult),
}

/// BUG (zoo): non-atomic-transfer. The debit under the source's monitor
/// alone, released, then the credit under the target's monitor alone: two
/// opposite transfers can each go first on a different account.
pub(super) fn transfer_in_two_steps(
    from: &Account,
    to: &Account,
    t: &Transfer,
    fp: &Fingerprint,
    ctx: &CallContext,
    cfg: &LedgerConfig,
) -> LedgerResult<Attempt<Pending<OpResult>>> {
    // Once debited, the credit must not be refused for a busy lock: no fast path.
    if !ctx.may_block() {
        return Ok(Attempt::WouldBlock);
    }
    let mut result = match debit_step(from, t, fp, ctx, cfg)? {
        Debit::Finished(result) => return Ok(Attempt::Done(result)),
        Debit::Debited(result) => result,
    };
    let approved = result.outcome == Outcome::Approved;
    {
        let mut dst = to.lock();
        result.to_sequence = dst.next_sequence();
        if approved {
            // The debit is done and this bug has no undo; saturate, never panic.
            dst.balance = dst.balance.saturating_add(t.amount);
        }
        result.to_balance = dst.balance;
        if approved {
            dst.wake_waiters();
        }
    }
    // A third critical section: the id was pending meanwhile (copies: "in progress").
    let _ = from.lock().log.record(fp, &result);
    Ok(Attempt::Done(Pending::ready(result)))
}

/// The first half of [`transfer_in_two_steps`], under the source's lock only.
fn debit_step(
    from: &Account,
    t: &Transfer,
    fp: &Fingerprint,
    ctx: &CallContext,
    cfg: &LedgerConfig,
) -> LedgerResult<Debit> {
    let mut src = from.lock();
    if let Lookup::Replay(r) = src.log.check(from.id(), &t.request_id, fp)? {
        return Ok(Debit::Finished(Pending::ready(r)));
    }
    if ctx.abandoned() {
        return src
            .abandon(cfg, from.id(), &t.request_id, fp)
            .map(Debit::Finished);
    }
    src.log.mark_waiting(&t.request_id, fp);
    let sequence = src.next_sequence();
    processing_delay(cfg);
    let approve = src.balance >= t.amount;
    if approve {
        src.balance -= t.amount;
    }
    Ok(Debit::Debited(OpResult {
        request_id: t.request_id.clone(),
        outcome: if approve {
            Outcome::Approved
        } else {
            Outcome::InsufficientFunds
        },
        balance: src.balance,
        sequence,
        replayed: false,
        to_balance: 0,
        to_sequence: 0,
    }))
}
