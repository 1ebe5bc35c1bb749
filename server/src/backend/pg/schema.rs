//! The ledger's tables and their versioned migrations, applied at start under
//! an advisory lock (so several servers starting at once migrate once). A
//! database whose schema is newer than this binary knows is refused: an old
//! server must never write into a layout it does not understand.
//!
//! Money is `numeric(20,0)` (every u64 fits; passed as text, parsed with
//! checks), sequence numbers `bigint`.

use postgres::Client;

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i32 = 2;

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

/// Version 2: every credit is announced on the `bank_funds` channel (the
/// account id as payload, delivered at commit), so that withdrawals waiting
/// for funds on any server are woken without polling (`funds.rs`); and the
/// database's oldest request ids are found by index (`id_cap.rs`).
const V2: &str = "
CREATE FUNCTION bank_notify_funds() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bank_funds', NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER bank_funds AFTER UPDATE OF balance ON bank_accounts FOR EACH ROW
    WHEN (NEW.balance > OLD.balance) EXECUTE FUNCTION bank_notify_funds();
CREATE INDEX bank_operations_position ON bank_operations (position);
";

/// Every migration, in order: (the version it leads to, its SQL).
const MIGRATIONS: &[(i32, &str)] = &[(1, V1), (2, V2)];

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
