//! The ledger's tables and their versioned migrations, applied at start under
//! an advisory lock (so several servers starting at once migrate once). A
//! database whose schema is newer than this binary knows is refused: an old
//! server must never write into a layout it does not understand.
//!
//! Money is `numeric(20,0)` (every u64 fits; passed as text, parsed with
//! checks), sequence numbers `bigint`.

use postgres::Client;

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i32 = 6;

/// Taken by every migrating server for the length of its migration
/// (`pg_advisory_xact_lock`; the bytes of "bank").
const MIGRATION_LOCK_KEY: i64 = 0x6261_6e6b;

/// Version 1: accounts, and the request-id log with its insertion order.
const V1: &str = "
CREATE TABLE bank_accounts (
    id          text PRIMARY KEY,
    balance     numeric(20,0) NOT NULL CHECK (balance >= 0 AND balance <= 18446744073709551615),
    sequence    bigint NOT NULL DEFAULT 0 CHECK (sequence >= 0),
    owner       text,
    remembered  bigint NOT NULL DEFAULT 0,
    forgotten   bigint NOT NULL DEFAULT 0
);
CREATE TABLE bank_operations (
    account_id  text NOT NULL REFERENCES bank_accounts (id),
    request_id  text NOT NULL,
    position    bigint GENERATED ALWAYS AS IDENTITY,
    kind        smallint NOT NULL,
    to_account  text,
    amount      numeric(20,0) NOT NULL,
    outcome     smallint NOT NULL,
    balance     numeric(20,0) NOT NULL,
    sequence    bigint NOT NULL,
    to_balance  numeric(20,0) NOT NULL,
    to_sequence bigint NOT NULL,
    PRIMARY KEY (account_id, request_id)
);
CREATE INDEX bank_operations_age ON bank_operations (account_id, position);
";

/// Version 2: a credit of an account someone waits on (`waiting` > 0: the
/// withdrawals waiting for funds on it, over every server) is announced on
/// the `bank_funds` channel (the account id as payload, delivered at
/// commit), so that they are woken without polling (`funds.rs`). Only then:
/// a NOTIFY serializes the commits that send one (measured: notifying every
/// credit cut P10 by 40%). And the database's oldest request ids are found by
/// index (`id_cap.rs`).
const V2: &str = "
ALTER TABLE bank_accounts ADD COLUMN waiting integer NOT NULL DEFAULT 0;
CREATE FUNCTION bank_notify_funds() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bank_funds', NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER bank_funds AFTER UPDATE OF balance ON bank_accounts FOR EACH ROW
    WHEN (NEW.balance > OLD.balance AND NEW.waiting > 0) EXECUTE FUNCTION bank_notify_funds();
CREATE INDEX bank_operations_position ON bank_operations (position);
";

/// Version 3: a deposit or withdrawal in one call (`bank_single`), and a
/// transfer (`bank_transfer`: both rows locked in id order), so that
/// an op that needs no delay is one round trip (`one_trip.rs`): lock the
/// row, look the request id up (a stored record is returned as it is, for
/// the server to judge: replay, conflict or fence), decide, write the row
/// and the record, forget the oldest ids past the retention. Status: 0
/// applied, 1 stored, 2 no such account, 3 the credit would overflow, 4 a
/// withdrawal that may wait (`p_wait`) is short of funds: nothing written.
const V3: &str = "
CREATE FUNCTION bank_single(p_id text, p_rid text, p_kind int2, p_amount numeric, p_retention bigint,
                            p_wait boolean)
RETURNS TABLE (status int2, request_id text, kind int2, to_account text, amount text, outcome int2,
               balance text, sequence bigint, to_balance text, to_sequence bigint)
LANGUAGE plpgsql AS $$
DECLARE
    a bank_accounts%ROWTYPE;
    o bank_operations%ROWTYPE;
    after numeric;
    code int2 := 0;
    forget bigint := 0;
BEGIN
    SELECT * INTO a FROM bank_accounts WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 2::int2, p_rid, NULL::int2, NULL::text, NULL::text, NULL::int2, NULL::text,
            NULL::bigint, NULL::text, NULL::bigint;
        RETURN;
    END IF;
    IF p_rid <> '' THEN
        SELECT * INTO o FROM bank_operations WHERE account_id = p_id AND bank_operations.request_id = p_rid;
        IF FOUND THEN
            RETURN QUERY SELECT 1::int2, o.request_id, o.kind, o.to_account, o.amount::text, o.outcome,
                o.balance::text, o.sequence, o.to_balance::text, o.to_sequence;
            RETURN;
        END IF;
    END IF;
    IF p_wait AND p_kind = 1 AND a.balance < p_amount THEN
        RETURN QUERY SELECT 4::int2, p_rid, NULL::int2, NULL::text, NULL::text, NULL::int2, NULL::text,
            NULL::bigint, NULL::text, NULL::bigint;
        RETURN;
    END IF;
    IF p_kind = 0 THEN
        after := a.balance + p_amount;
        IF after > 18446744073709551615 THEN
            RETURN QUERY SELECT 3::int2, p_rid, NULL::int2, NULL::text, NULL::text, NULL::int2, NULL::text,
                NULL::bigint, NULL::text, NULL::bigint;
            RETURN;
        END IF;
    ELSIF a.balance >= p_amount THEN
        after := a.balance - p_amount;
    ELSE
        after := a.balance;
        code := 1;
    END IF;
    IF p_rid = '' THEN
        UPDATE bank_accounts SET balance = after, sequence = a.sequence + 1 WHERE id = p_id;
    ELSE
        forget := LEAST(GREATEST(a.remembered + 1 - p_retention, 0), GREATEST(a.remembered, 0));
        UPDATE bank_accounts SET balance = after, sequence = a.sequence + 1,
            remembered = a.remembered + 1 - forget, forgotten = a.forgotten + forget WHERE id = p_id;
        INSERT INTO bank_operations (account_id, request_id, kind, to_account, amount, outcome,
            balance, sequence, to_balance, to_sequence)
            VALUES (p_id, p_rid, p_kind, NULL, p_amount, code, after, a.sequence + 1, 0, 0);
        IF forget > 0 THEN
            DELETE FROM bank_operations WHERE account_id = p_id AND position IN (
                SELECT position FROM bank_operations WHERE account_id = p_id ORDER BY position LIMIT forget);
        END IF;
    END IF;
    RETURN QUERY SELECT 0::int2, p_rid, p_kind, NULL::text, p_amount::text, code, after::text,
        a.sequence + 1, '0'::text, 0::bigint;
END $$;
CREATE FUNCTION bank_transfer(p_from text, p_to text, p_rid text, p_amount numeric, p_retention bigint)
RETURNS TABLE (status int2, request_id text, kind int2, to_account text, amount text, outcome int2,
               balance text, sequence bigint, to_balance text, to_sequence bigint)
LANGUAGE plpgsql AS $$
DECLARE
    r bank_accounts%ROWTYPE;
    src bank_accounts%ROWTYPE;
    dst bank_accounts%ROWTYPE;
    o bank_operations%ROWTYPE;
    code int2 := 0;
    forget bigint := 0;
BEGIN
    FOR r IN SELECT * FROM bank_accounts WHERE id IN (p_from, p_to) ORDER BY id COLLATE \"C\" FOR UPDATE LOOP
        IF r.id = p_from THEN src := r; ELSE dst := r; END IF;
    END LOOP;
    IF src.id IS NULL OR dst.id IS NULL THEN
        RETURN QUERY SELECT 2::int2, p_rid, NULL::int2, CASE WHEN src.id IS NULL THEN p_from ELSE p_to END,
            NULL::text, NULL::int2, NULL::text, NULL::bigint, NULL::text, NULL::bigint;
        RETURN;
    END IF;
    IF p_rid <> '' THEN
        SELECT * INTO o FROM bank_operations WHERE account_id = p_from AND bank_operations.request_id = p_rid;
        IF FOUND THEN
            RETURN QUERY SELECT 1::int2, o.request_id, o.kind, o.to_account, o.amount::text, o.outcome,
                o.balance::text, o.sequence, o.to_balance::text, o.to_sequence;
            RETURN;
        END IF;
    END IF;
    IF src.balance >= p_amount THEN
        IF dst.balance + p_amount > 18446744073709551615 THEN
            RETURN QUERY SELECT 3::int2, p_rid, NULL::int2, p_to, NULL::text, NULL::int2, NULL::text,
                NULL::bigint, NULL::text, NULL::bigint;
            RETURN;
        END IF;
        src.balance := src.balance - p_amount;
        dst.balance := dst.balance + p_amount;
    ELSE
        code := 1;
    END IF;
    IF p_rid <> '' THEN
        forget := LEAST(GREATEST(src.remembered + 1 - p_retention, 0), GREATEST(src.remembered, 0));
    END IF;
    UPDATE bank_accounts SET balance = src.balance, sequence = src.sequence + 1,
        remembered = src.remembered + (CASE WHEN p_rid <> '' THEN 1 ELSE 0 END) - forget,
        forgotten = src.forgotten + forget WHERE id = p_from;
    UPDATE bank_accounts SET balance = dst.balance, sequence = dst.sequence + 1 WHERE id = p_to;
    IF p_rid <> '' THEN
        INSERT INTO bank_operations (account_id, request_id, kind, to_account, amount, outcome,
            balance, sequence, to_balance, to_sequence)
            VALUES (p_from, p_rid, 2, p_to, p_amount, code, src.balance, src.sequence + 1,
                dst.balance, dst.sequence + 1);
        IF forget > 0 THEN
            DELETE FROM bank_operations WHERE account_id = p_from AND position IN (
                SELECT position FROM bank_operations WHERE account_id = p_from ORDER BY position LIMIT forget);
        END IF;
    END IF;
    RETURN QUERY SELECT 0::int2, p_rid, 2::int2, p_to, p_amount::text, code, src.balance::text,
        src.sequence + 1, dst.balance::text, dst.sequence + 1;
END $$;
";

/// Version 4: a batch of one account's deposits and withdrawals
/// (`--batch-max`) in one call (`bank_batch`, `batch_trip.rs`): lock the row,
/// then each op in queue order: an id already seen in this batch is
/// answered 5 (run it alone after the batch), a stored record 1 (for the
/// server to judge), an abandoned call is recorded NOT_APPLIED (no sequence
/// number), a credit that would overflow 3 (nothing written for it), else
/// it is decided on the balance the op before it left and takes the next
/// sequence number (0); then the row is written once and the oldest ids
/// past the retention forgotten. One row per op, in order (one row of
/// status 2 when the account does not exist).
const V4: &str = "
CREATE FUNCTION bank_batch(p_id text, p_rids text[], p_kinds int2[], p_amounts numeric[],
                           p_abandoned boolean[], p_retention bigint)
RETURNS TABLE (status int2, request_id text, kind int2, to_account text, amount text, outcome int2,
               balance text, sequence bigint, to_balance text, to_sequence bigint)
LANGUAGE plpgsql AS $$
DECLARE
    a bank_accounts%ROWTYPE;
    o bank_operations%ROWTYPE;
    bal numeric;
    seq bigint;
    rid text;
    seen text[] := '{}';
    code int2;
    added bigint := 0;
    changed boolean := false;
    forget bigint;
BEGIN
    SELECT * INTO a FROM bank_accounts WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 2::int2, NULL::text, NULL::int2, NULL::text, NULL::text, NULL::int2, NULL::text,
            NULL::bigint, NULL::text, NULL::bigint;
        RETURN;
    END IF;
    bal := a.balance;
    seq := a.sequence;
    FOR i IN 1..coalesce(array_length(p_rids, 1), 0) LOOP
        rid := p_rids[i];
        IF rid <> '' AND rid = ANY(seen) THEN
            RETURN QUERY SELECT 5::int2, rid, NULL::int2, NULL::text, NULL::text, NULL::int2, NULL::text,
                NULL::bigint, NULL::text, NULL::bigint;
            CONTINUE;
        END IF;
        IF rid <> '' THEN
            seen := seen || rid;
            SELECT * INTO o FROM bank_operations WHERE account_id = p_id AND bank_operations.request_id = rid;
            IF FOUND THEN
                RETURN QUERY SELECT 1::int2, o.request_id, o.kind, o.to_account, o.amount::text, o.outcome,
                    o.balance::text, o.sequence, o.to_balance::text, o.to_sequence;
                CONTINUE;
            END IF;
        END IF;
        IF p_abandoned[i] THEN
            changed := true;
            IF rid <> '' THEN
                INSERT INTO bank_operations (account_id, request_id, kind, to_account, amount, outcome,
                    balance, sequence, to_balance, to_sequence)
                    VALUES (p_id, rid, p_kinds[i], NULL, p_amounts[i], 2, 0, 0, 0, 0);
                added := added + 1;
            END IF;
            RETURN QUERY SELECT 0::int2, rid, p_kinds[i], NULL::text, p_amounts[i]::text, 2::int2, '0'::text,
                0::bigint, '0'::text, 0::bigint;
            CONTINUE;
        END IF;
        IF p_kinds[i] = 0 THEN
            IF bal + p_amounts[i] > 18446744073709551615 THEN
                RETURN QUERY SELECT 3::int2, rid, NULL::int2, NULL::text, NULL::text, NULL::int2, NULL::text,
                    NULL::bigint, NULL::text, NULL::bigint;
                CONTINUE;
            END IF;
            bal := bal + p_amounts[i];
            code := 0;
        ELSIF bal >= p_amounts[i] THEN
            bal := bal - p_amounts[i];
            code := 0;
        ELSE
            code := 1;
        END IF;
        seq := seq + 1;
        changed := true;
        IF rid <> '' THEN
            INSERT INTO bank_operations (account_id, request_id, kind, to_account, amount, outcome,
                balance, sequence, to_balance, to_sequence)
                VALUES (p_id, rid, p_kinds[i], NULL, p_amounts[i], code, bal, seq, 0, 0);
            added := added + 1;
        END IF;
        RETURN QUERY SELECT 0::int2, rid, p_kinds[i], NULL::text, p_amounts[i]::text, code, bal::text, seq,
            '0'::text, 0::bigint;
    END LOOP;
    IF changed THEN
        forget := LEAST(GREATEST(a.remembered + added - p_retention, 0), GREATEST(a.remembered, 0));
        UPDATE bank_accounts SET balance = bal, sequence = seq, remembered = a.remembered + added - forget,
            forgotten = a.forgotten + forget WHERE id = p_id;
        IF forget > 0 THEN
            DELETE FROM bank_operations WHERE account_id = p_id AND position IN (
                SELECT position FROM bank_operations WHERE account_id = p_id ORDER BY position LIMIT forget);
        END IF;
    END IF;
END $$;
";

/// Version 5: the hand-off (`hand_off.rs`). A withdrawal waiting for funds
/// registers in `bank_waiters` (its id, amount and deadline, by the
/// database's clock) once it is counted as waiting; a deposit by
/// `bank_single` then applies, in its own transaction, each registered
/// withdrawal of the account that the new balance covers, oldest first
/// (`bank_hand_off`: the next sequence number each, the record written as
/// the withdrawal would have written it, the registration marked `handed`;
/// an id already recorded, a fence, is skipped and its registration
/// dropped), and notifies. The registering copy of the call (the one whose
/// insert made the row: `position`, its token) finds its record committed
/// and its registration handed (`bank_wait`, status 6) and answers without
/// a commit of its own: its op was made durable by the deposit's. Another
/// copy of the same request id finds the record as any replay (status 1). A withdrawal's look that writes
/// nothing the answer depends on (its registration, a lock) commits without
/// waiting for the flush.
const V5: &str = "
CREATE TABLE bank_waiters (
    account_id  text NOT NULL REFERENCES bank_accounts (id),
    request_id  text NOT NULL,
    amount      numeric(20,0) NOT NULL,
    deadline    timestamptz NOT NULL,
    position    bigint GENERATED ALWAYS AS IDENTITY,
    handed      boolean NOT NULL DEFAULT false,
    h_balance   numeric(20,0),
    h_sequence  bigint,
    PRIMARY KEY (account_id, request_id)
);
CREATE FUNCTION bank_hand_off(p_id text, INOUT bal numeric, INOUT seq bigint, OUT added bigint)
LANGUAGE plpgsql AS $$
DECLARE
    w bank_waiters%ROWTYPE;
BEGIN
    added := 0;
    -- Left behind by a server that died while its withdrawal waited.
    DELETE FROM bank_waiters WHERE account_id = p_id AND deadline < clock_timestamp() - interval '1 minute';
    FOR w IN SELECT * FROM bank_waiters WHERE account_id = p_id AND NOT handed ORDER BY position LOOP
        CONTINUE WHEN w.deadline <= clock_timestamp() OR bal < w.amount;
        INSERT INTO bank_operations (account_id, request_id, kind, to_account, amount, outcome,
            balance, sequence, to_balance, to_sequence)
            VALUES (p_id, w.request_id, 1, NULL, w.amount, 0, bal - w.amount, seq + 1, 0, 0)
            ON CONFLICT ON CONSTRAINT bank_operations_pkey DO NOTHING;
        IF FOUND THEN
            UPDATE bank_waiters SET handed = true, h_balance = bal - w.amount, h_sequence = seq + 1
                WHERE account_id = p_id AND request_id = w.request_id;
            bal := bal - w.amount;
            seq := seq + 1;
            added := added + 1;
        ELSE
            DELETE FROM bank_waiters WHERE account_id = p_id AND request_id = w.request_id;
        END IF;
    END LOOP;
    IF added > 0 THEN
        PERFORM pg_notify('bank_funds', p_id);
    END IF;
END $$;
CREATE OR REPLACE FUNCTION bank_single(p_id text, p_rid text, p_kind int2, p_amount numeric, p_retention bigint,
                            p_wait boolean)
RETURNS TABLE (status int2, request_id text, kind int2, to_account text, amount text, outcome int2,
               balance text, sequence bigint, to_balance text, to_sequence bigint)
LANGUAGE plpgsql AS $$
DECLARE
    a bank_accounts%ROWTYPE;
    o bank_operations%ROWTYPE;
    after numeric;
    code int2 := 0;
    forget bigint := 0;
    mine bigint := CASE WHEN p_rid <> '' THEN 1 ELSE 0 END;
    h_bal numeric;
    h_seq bigint;
    h_added bigint := 0;
BEGIN
    SELECT * INTO a FROM bank_accounts WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 2::int2, p_rid, NULL::int2, NULL::text, NULL::text, NULL::int2, NULL::text,
            NULL::bigint, NULL::text, NULL::bigint;
        RETURN;
    END IF;
    IF p_rid <> '' THEN
        SELECT * INTO o FROM bank_operations WHERE account_id = p_id AND bank_operations.request_id = p_rid;
        IF FOUND THEN
            RETURN QUERY SELECT 1::int2, o.request_id, o.kind, o.to_account, o.amount::text, o.outcome,
                o.balance::text, o.sequence, o.to_balance::text, o.to_sequence;
            RETURN;
        END IF;
    END IF;
    IF p_wait AND p_kind = 1 AND a.balance < p_amount THEN
        RETURN QUERY SELECT 4::int2, p_rid, NULL::int2, NULL::text, NULL::text, NULL::int2, NULL::text,
            NULL::bigint, NULL::text, NULL::bigint;
        RETURN;
    END IF;
    IF p_kind = 0 THEN
        after := a.balance + p_amount;
        IF after > 18446744073709551615 THEN
            RETURN QUERY SELECT 3::int2, p_rid, NULL::int2, NULL::text, NULL::text, NULL::int2, NULL::text,
                NULL::bigint, NULL::text, NULL::bigint;
            RETURN;
        END IF;
    ELSIF a.balance >= p_amount THEN
        after := a.balance - p_amount;
    ELSE
        after := a.balance;
        code := 1;
    END IF;
    IF p_rid <> '' THEN
        INSERT INTO bank_operations (account_id, request_id, kind, to_account, amount, outcome,
            balance, sequence, to_balance, to_sequence)
            VALUES (p_id, p_rid, p_kind, NULL, p_amount, code, after, a.sequence + 1, 0, 0);
    END IF;
    h_bal := after;
    h_seq := a.sequence + 1;
    IF p_kind = 0 AND a.waiting > 0 THEN
        SELECT * INTO h_bal, h_seq, h_added FROM bank_hand_off(p_id, after, a.sequence + 1);
    END IF;
    forget := LEAST(GREATEST(a.remembered + mine + h_added - p_retention, 0), GREATEST(a.remembered, 0));
    UPDATE bank_accounts SET balance = h_bal, sequence = h_seq,
        remembered = a.remembered + mine + h_added - forget, forgotten = a.forgotten + forget WHERE id = p_id;
    IF forget > 0 THEN
        DELETE FROM bank_operations WHERE account_id = p_id AND position IN (
            SELECT position FROM bank_operations WHERE account_id = p_id ORDER BY position LIMIT forget);
    END IF;
    RETURN QUERY SELECT 0::int2, p_rid, p_kind, NULL::text, p_amount::text, code, after::text,
        a.sequence + 1, '0'::text, 0::bigint;
END $$;
CREATE FUNCTION bank_wait(p_id text, p_rid text, p_amount numeric, p_retention bigint, p_wait_ms bigint,
                          p_token bigint)
RETURNS TABLE (status int2, request_id text, kind int2, to_account text, amount text, outcome int2,
               balance text, sequence bigint, to_balance text, to_sequence bigint)
LANGUAGE plpgsql AS $$
DECLARE
    a bank_accounts%ROWTYPE;
    o bank_operations%ROWTYPE;
    w bank_waiters%ROWTYPE;
    mine bigint;
BEGIN
    SELECT * INTO a FROM bank_accounts WHERE id = p_id FOR UPDATE;
    IF FOUND THEN
        -- Handed: answered from the registration (its record may be forgotten by now).
        DELETE FROM bank_waiters WHERE position = p_token AND account_id = p_id AND handed RETURNING * INTO w;
        IF FOUND THEN
            PERFORM set_config('synchronous_commit', 'off', true);
            RETURN QUERY SELECT 6::int2, p_rid, 1::int2, NULL::text, w.amount::text, 0::int2, w.h_balance::text,
                w.h_sequence, '0'::text, 0::bigint;
            RETURN;
        END IF;
        SELECT * INTO o FROM bank_operations WHERE account_id = p_id AND bank_operations.request_id = p_rid;
        IF FOUND THEN
            DELETE FROM bank_waiters WHERE position = p_token AND account_id = p_id;
            RETURN QUERY SELECT 1::int2, o.request_id,
                o.kind, o.to_account, o.amount::text, o.outcome, o.balance::text, o.sequence,
                o.to_balance::text, o.to_sequence;
            PERFORM set_config('synchronous_commit', 'off', true);
            RETURN;
        END IF;
        IF p_wait_ms > 0 AND a.balance < p_amount THEN
            INSERT INTO bank_waiters (account_id, request_id, amount, deadline)
                VALUES (p_id, p_rid, p_amount, clock_timestamp() + p_wait_ms * interval '1 millisecond')
                ON CONFLICT ON CONSTRAINT bank_waiters_pkey DO NOTHING RETURNING position INTO mine;
            PERFORM set_config('synchronous_commit', 'off', true);
            RETURN QUERY SELECT 4::int2, p_rid, NULL::int2, NULL::text, NULL::text, NULL::int2, NULL::text,
                mine, NULL::text, NULL::bigint;
            RETURN;
        END IF;
        DELETE FROM bank_waiters WHERE position = p_token AND account_id = p_id;
    END IF;
    RETURN QUERY SELECT * FROM bank_single(p_id, p_rid, 1::int2, p_amount, p_retention, false);
END $$;
";

/// Version 6: the one-trip ops of several accounts in one call
/// (`bank_many`, the lane of `lane.rs`): one transaction, one commit (one WAL
/// flush) for all of them. Every account row the call touches is locked
/// first, in id order (`COLLATE "C"`, the order `bank_transfer` and the
/// server's monitors use), so that two calls, of this server or another,
/// never wait on each other in a circle. `p_kinds`: 0 deposit, 1
/// withdrawal, 2 transfer to `p_tos`; `p_rounds`: the ops come in rounds,
/// one after another (an account's ops in order, in later and later
/// rounds). One row per op, in the order given, with `bank_single`'s
/// columns and statuses. When no account of a round is touched twice in
/// it, none is waited on, and no op may wait, the round is decided and
/// written set-wise (`bank_many_apart`: one statement, its plan cached as
/// plpgsql caches it; a plpgsql call per op cost ≈ 100 µs of the database's
/// CPU); otherwise each op is `bank_single`'s or
/// `bank_transfer`'s, in order.
///
/// And the records' foreign key to the accounts goes: its check ran a query
/// and took a row lock per record written (a fifth of the database's CPU
/// per op at zero delay, measured with perf), and it cannot fail: every
/// record is written by a function that has just locked its account's row,
/// and no account is ever deleted.
const V6: &str = "
ALTER TABLE bank_operations DROP CONSTRAINT IF EXISTS bank_operations_account_id_fkey;
CREATE FUNCTION bank_many_apart(p_ids text[], p_tos text[], p_rids text[], p_kinds int2[], p_amounts numeric[],
                                p_retention bigint)
RETURNS TABLE (status int2, request_id text, kind int2, to_account text, amount text, outcome int2,
               balance text, sequence bigint, to_balance text, to_sequence bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
RETURN QUERY WITH ops AS (
    SELECT * FROM unnest(p_ids, p_tos, p_rids, p_kinds, p_amounts) WITH ORDINALITY AS o(id, to_id, rid, k, amt, i)
), cur AS (
    SELECT ops.*, s.id AS sid, s.balance AS sb, s.sequence AS sseq, s.remembered AS srem, s.forgotten AS sforg,
        d.id AS did, d.balance AS db, d.sequence AS dseq,
        r.request_id AS r_rid, r.kind AS r_kind, r.to_account AS r_to, r.amount AS r_amt, r.outcome AS r_out,
        r.balance AS r_bal, r.sequence AS r_seq, r.to_balance AS r_tob, r.to_sequence AS r_toseq,
        (CASE WHEN ops.rid <> '' THEN 1 ELSE 0 END)::bigint AS mine
    -- Each a look-up by key (LIMIT 1 keeps the planner from hashing a whole table).
    FROM ops
    LEFT JOIN LATERAL (SELECT * FROM bank_accounts x WHERE x.id = ops.id LIMIT 1) s ON true
    LEFT JOIN LATERAL (SELECT * FROM bank_accounts x WHERE x.id = ops.to_id LIMIT 1) d ON true
    LEFT JOIN LATERAL (SELECT * FROM bank_operations x
        WHERE ops.rid <> '' AND x.account_id = ops.id AND x.request_id = ops.rid LIMIT 1) r ON true
), dec AS (
    SELECT cur.*,
        (CASE WHEN sid IS NULL OR (k = 2 AND did IS NULL) THEN 2
              WHEN r_rid IS NOT NULL THEN 1
              WHEN k = 0 AND sb + amt > 18446744073709551615 THEN 3
              WHEN k = 2 AND sb >= amt AND db + amt > 18446744073709551615 THEN 3
              ELSE 0 END)::int2 AS st,
        (CASE WHEN k <> 0 AND sb < amt THEN 1 ELSE 0 END)::int2 AS code,
        CASE WHEN k = 0 THEN sb + amt WHEN sb >= amt THEN sb - amt ELSE sb END AS after,
        CASE WHEN k = 2 AND sb >= amt THEN db + amt ELSE db END AS dafter,
        -- As bank_transfer: a transfer without a request id forgets nothing.
        CASE WHEN k = 2 AND rid = '' THEN 0
             ELSE LEAST(GREATEST(srem + mine - p_retention, 0), GREATEST(srem, 0)) END AS forget
    FROM cur
), upd AS (
    UPDATE bank_accounts a SET balance = w.bal, sequence = w.seq,
        remembered = coalesce(w.rem, a.remembered), forgotten = coalesce(w.forg, a.forgotten)
    FROM (SELECT id, after AS bal, sseq + 1 AS seq, srem + mine - forget AS rem, sforg + forget AS forg
              FROM dec WHERE st = 0
          UNION ALL
          SELECT to_id, dafter, dseq + 1, NULL, NULL FROM dec WHERE st = 0 AND k = 2) w
    WHERE a.id = w.id
), ins AS (
    INSERT INTO bank_operations (account_id, request_id, kind, to_account, amount, outcome,
        balance, sequence, to_balance, to_sequence)
    SELECT id, rid, k, to_id, amt, code, after, sseq + 1,
        CASE WHEN k = 2 THEN dafter ELSE 0 END, CASE WHEN k = 2 THEN dseq + 1 ELSE 0 END
    FROM dec WHERE st = 0 AND rid <> ''
), del AS (
    DELETE FROM bank_operations b USING dec f
    CROSS JOIN LATERAL (SELECT x.position FROM bank_operations x WHERE x.account_id = f.id
        ORDER BY x.position LIMIT f.forget) old
    WHERE f.st = 0 AND f.forget > 0 AND b.account_id = f.id AND b.position = old.position
)
SELECT st,
    CASE WHEN st = 1 THEN r_rid ELSE rid END,
    CASE st WHEN 0 THEN k WHEN 1 THEN r_kind END,
    CASE st WHEN 0 THEN to_id WHEN 1 THEN r_to WHEN 2 THEN (CASE WHEN k <> 2 THEN NULL WHEN sid IS NULL THEN id
        ELSE to_id END) ELSE (CASE WHEN k = 2 THEN to_id END) END,
    CASE st WHEN 0 THEN amt::text WHEN 1 THEN r_amt::text END,
    CASE st WHEN 0 THEN code WHEN 1 THEN r_out END,
    CASE st WHEN 0 THEN after::text WHEN 1 THEN r_bal::text END,
    CASE st WHEN 0 THEN sseq + 1 WHEN 1 THEN r_seq END,
    CASE st WHEN 0 THEN (CASE WHEN k = 2 THEN dafter::text ELSE '0' END) WHEN 1 THEN r_tob::text END,
    CASE st WHEN 0 THEN (CASE WHEN k = 2 THEN dseq + 1 ELSE 0 END) WHEN 1 THEN r_toseq END
FROM dec ORDER BY i;
END $$;
CREATE FUNCTION bank_many(p_ids text[], p_tos text[], p_rids text[], p_kinds int2[], p_amounts numeric[],
                          p_waits boolean[], p_rounds int4[], p_retention bigint)
RETURNS TABLE (status int2, request_id text, kind int2, to_account text, amount text, outcome int2,
               balance text, sequence bigint, to_balance text, to_sequence bigint)
LANGUAGE plpgsql AS $$
DECLARE
    n int := coalesce(array_length(p_ids, 1), 0);
    touched text[] := p_ids || array_remove(p_tos, NULL);
    waited bigint;
    lo int := 1;
    apart boolean;
BEGIN
    SELECT count(*) FILTER (WHERE x.waiting > 0) INTO waited FROM (
        SELECT waiting FROM bank_accounts WHERE id = ANY(touched) ORDER BY id COLLATE \"C\" FOR UPDATE) x;
    FOR i IN 1..n LOOP
        CONTINUE WHEN i < n AND p_rounds[i + 1] = p_rounds[i];
        -- Ops lo..i are one round.
        apart := waited = 0 AND NOT (true = ANY(p_waits[lo:i])) AND (SELECT count(DISTINCT t) = count(*)
            FROM unnest(p_ids[lo:i] || array_remove(p_tos[lo:i], NULL)) t);
        IF apart THEN
            RETURN QUERY SELECT * FROM bank_many_apart(p_ids[lo:i], p_tos[lo:i], p_rids[lo:i], p_kinds[lo:i],
                p_amounts[lo:i], p_retention);
        ELSE
            FOR j IN lo..i LOOP
                IF p_kinds[j] = 2 THEN
                    RETURN QUERY SELECT * FROM bank_transfer(p_ids[j], p_tos[j], p_rids[j], p_amounts[j],
                        p_retention);
                ELSE
                    RETURN QUERY SELECT * FROM bank_single(p_ids[j], p_rids[j], p_kinds[j], p_amounts[j],
                        p_retention, p_waits[j]);
                END IF;
            END LOOP;
        END IF;
        lo := i + 1;
    END LOOP;
END $$;
";

/// Every migration, in order: (the version it leads to, its SQL).
const MIGRATIONS: &[(i32, &str)] = &[(1, V1), (2, V2), (3, V3), (4, V4), (5, V5), (6, V6)];

/// Brings the database to [`SCHEMA_VERSION`]; returns the version found.
pub fn migrate(client: &mut Client) -> Result<i32, String> {
    let mut tx = client.transaction().map_err(|e| e.to_string())?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
        .map_err(|e| e.to_string())?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS bank_schema (
             id integer PRIMARY KEY CHECK (id = 1),
             version integer NOT NULL
         )",
    )
    .map_err(|e| e.to_string())?;
    let found: i32 = tx
        .query_opt("SELECT version FROM bank_schema WHERE id = 1", &[])
        .map_err(|e| e.to_string())?
        .map_or(0, |row| row.get(0));
    check_version(found)?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.batch_execute(sql)
            .map_err(|e| format!("migration to schema version {version} failed: {e}"))?;
    }
    tx.execute(
        "INSERT INTO bank_schema (id, version) VALUES (1, $1)
         ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version",
        &[&SCHEMA_VERSION],
    )
    .map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())?;
    Ok(found)
}

/// Refuses a schema newer than this binary's.
pub fn check_version(found: i32) -> Result<(), String> {
    if found > SCHEMA_VERSION {
        return Err(format!(
            "the database's ledger schema is version {found}, newer than this bank-server knows \
             ({SCHEMA_VERSION}): refusing to start (run a bank-server at least as new as the one \
             that migrated it)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_schema_is_refused_and_older_ones_are_migrated() {
        assert!(check_version(0).is_ok());
        assert!(check_version(SCHEMA_VERSION).is_ok());
        let err = check_version(SCHEMA_VERSION + 1).unwrap_err();
        assert!(err.contains("newer than this bank-server knows"), "{err}");
        let last = MIGRATIONS.last().map(|(v, _)| *v);
        assert_eq!(last, Some(SCHEMA_VERSION), "every version has its migration");
    }
}
