//! The hand-off (schema version 5): a withdrawal waiting for funds, once
//! counted as waiting, registers in `bank_waiters` on a look that finds it
//! short (`bank_wait`); a deposit (`bank_single`) then applies the
//! registered withdrawals its balance covers in its own transaction and
//! notifies. Woken, the waiter finds its record, committed and durable with
//! the deposit, and answers with no commit of its own (status 6): the wake
//! costs the NOTIFY and one read, not a second WAL flush. Only the copy of
//! the call whose look made the registration (it holds its `position` as a
//! token) answers so; another copy under the same request id (a client's
//! retry while the first waits) answers as a replay. The looks that
//! write only the registration (or only lock the row) commit without
//! waiting for the flush: nothing answered depends on them.
//!
//! Every way out removes the registration with the decision, under the row
//! lock: a record found (6, or 1: another copy, or a fence, wrote it), the
//! last look at the deadline (`p_wait_ms` 0: decided as any withdrawal).
//! A registration left behind (a server killed, an error) is skipped once
//! its deadline (the database's clock) has passed, and a deposit never
//! writes over a record (a fence of `GetOperation`, a NOT_APPLIED of an
//! abandoned call): the id stays as recorded. Taken where one round trip is
//! allowed and the withdrawal has a request id; otherwise the waiter looks
//! as before (`single.rs`) and applies itself when woken.

use std::time::Instant;

use super::one_trip::{answer, Trip};
use super::pool::{self, DbFailure};
use super::single::{Single, Step};
use super::statements::Stmt;
use super::PgLedger;
use crate::backend::ledger::{CallContext, LedgerResult};

impl PgLedger {
    /// One look of a withdrawal counted as waiting until `until`: through
    /// `bank_wait` (registering it when short), else as [`PgLedger::look`].
    pub(super) fn look_waiting(
        &self,
        op: &Single<'_>,
        ctx: &CallContext,
        until: Instant,
        token: &mut i64,
    ) -> LedgerResult<Step> {
        if !self.hand_off_possible(op, ctx) {
            return self.look(op, ctx, Some(until));
        }
        let left = until.saturating_duration_since(Instant::now());
        let wait_ms = i64::try_from(left.as_millis()).unwrap_or(i64::MAX);
        match self.wait_trip(op, wait_ms, token) {
            Some(Ok(Trip::Short)) => Ok(Step::Wait),
            Some(Ok(Trip::Done(result))) => Ok(Step::Done(result)),
            Some(Err(e)) => Err(e),
            None => self.look(op, ctx, Some(until)),
        }
    }

    /// Whether `op` may register for the hand-off: a request id to record
    /// it under, one round trip allowed (so no processing delay to hold).
    pub(super) fn hand_off_possible(&self, op: &Single<'_>, ctx: &CallContext) -> bool {
        !op.request_id.is_empty() && self.one_trip_allowed(ctx)
    }

    /// One call of `bank_wait`; `None` when the database asks for a rerun.
    /// `token` is this call's registration (its `position`; 0: none yet),
    /// set when this look made it.
    fn wait_trip(&self, op: &Single<'_>, wait_ms: i64, token: &mut i64) -> Option<LedgerResult<Trip>> {
        let retention = i64::try_from(self.config.request_id_retention).unwrap_or(i64::MAX);
        let mut conn = match pool::checkout(self.pool.get()) {
            Ok(conn) => conn,
            Err(e) => return Some(Err(e)),
        };
        let amount = op.amount.to_string();
        let params: [&(dyn postgres::types::ToSql + Sync); 6] = [
            &op.account,
            &op.request_id,
            &amount,
            &retention,
            &wait_ms,
            &*token,
        ];
        match conn.query(Stmt::Wait, &params) {
            Ok(rows) => {
                let made = rows.first().filter(|r| r.get::<_, i16>(0) == 4);
                if let Some(position) = made.and_then(|r| r.get::<_, Option<i64>>(7)) {
                    *token = position;
                }
                Some(answer(op.account, rows.first(), (&op.kind, op.amount)))
            }
            Err(e) => match pool::classify(&e) {
                DbFailure::Retry(_) => None,
                DbFailure::Ledger(e) => Some(Err(e)),
            },
        }
    }
}
