//! Where the PostgreSQL tests find their database: `BANK_TEST_DATABASE_URL`.
//! Without it they are skipped, and say so once, past the harness's capture.

/// The variable that points the tests at a database.
pub const URL_VAR: &str = "BANK_TEST_DATABASE_URL";

/// The database URL, or `None` (and a message) when the tests are skipped.
pub fn url() -> Option<String> {
    let url = std::env::var(URL_VAR).ok().filter(|u| !u.is_empty());
    if url.is_none() {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "skipped: the PostgreSQL tests need {URL_VAR}=postgres://user@host:port/db (.ci/postgres.sh sets it)"
            );
        });
    }
    url
}
