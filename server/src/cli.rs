//! The `bank-server` command line: every flag but `--inject-bug` and
//! `--unsafe-no-lock` has an env-var fallback and maps onto one field of
//! [`ServerConfig`], whose `Default` gives every default. Kept out of `main`
//! so it can be tested.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::PossibleValue;
use clap::{Parser, ValueEnum};

use crate::admission::tls::TlsFiles;
use crate::backend::ledger::{InjectedBug, LedgerConfig};
use crate::backend::pg::{DbSettings, Isolation};
use crate::config::ServerConfig;
pub use crate::observe::logging::LogFormat;

/// The longest wait for funds the server accepts as a setting.
const MAX_WAIT_LIMIT: Duration = Duration::from_secs(3600);

/// The defaults of every flag: those of [`ServerConfig`], written once there.
fn d() -> ServerConfig {
    ServerConfig::default()
}

/// A default duration as clap shows and parses it.
fn hd(d: Duration) -> humantime::Duration {
    d.into()
}

/// A gRPC bank whose accounts are monitors (a sync mutex each; waiters for funds are wakers).
#[derive(Debug, Clone, Parser)]
#[command(name = "bank-server", version, about, long_about = None)]
pub struct Args {
    /// Address to listen on. Beyond loopback, use --tls-cert and --auth-tokens.
    #[arg(long, env = "BANK_LISTEN", default_value = crate::config::DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Simulated processing time slept inside each account's critical section
    /// (`1s` reproduces the textbook example; `0s` measures the bare lock).
    #[arg(long, env = "BANK_PROCESSING_DELAY", default_value_t = hd(d().ledger.processing_delay))]
    pub processing_delay: humantime::Duration,

    /// DANGER: serve withdrawals without holding the lock across the delay
    /// (read, sleep, write back). Loses updates; exists to demo the race.
    /// Deliberately no env-var fallback, like --inject-bug.
    #[arg(long)]
    pub unsafe_no_lock: bool,

    /// DANGER: plant one classic bug on purpose (the "bug zoo"), to show that
    /// the stress-client's consistency check catches it. Deliberately no
    /// env-var fallback: a stray variable must never break a real server.
    #[arg(long, value_enum, value_name = "NAME")]
    pub inject_bug: Option<InjectedBug>,

    /// Threads in tokio's blocking pool (where every lock is taken).
    #[arg(long, env = "BANK_MAX_BLOCKING_THREADS", default_value_t = d().max_blocking_threads)]
    pub max_blocking_threads: usize,

    /// Accounts the server opens at most.
    #[arg(long, env = "BANK_MAX_ACCOUNTS", default_value_t = d().ledger.max_accounts)]
    pub max_accounts: usize,

    /// Accounts one principal (with --auth-tokens) may hold; beyond it
    /// OpenAccount is RESOURCE_EXHAUSTED. At most --max-accounts [default:
    /// 10000, or --max-accounts if smaller]. Without tokens only --max-accounts applies.
    #[arg(long, env = "BANK_MAX_ACCOUNTS_PER_PRINCIPAL", value_name = "N")]
    pub max_accounts_per_principal: Option<usize>,

    /// Request ids remembered per account; past it the oldest is forgotten.
    #[arg(long, env = "BANK_REQUEST_ID_RETENTION", default_value_t = d().ledger.request_id_retention)]
    pub request_id_retention: usize,

    /// Request ids remembered over all accounts (~190-260 B each); past it the
    /// oldest ids of the principal remembering the most are forgotten.
    #[arg(long, env = "BANK_MAX_REQUEST_IDS", default_value_t = d().ledger.max_request_ids)]
    pub max_request_ids: usize,

    /// Withdrawals waiting for funds on one account at once.
    #[arg(long, env = "BANK_MAX_WAITERS_PER_ACCOUNT", default_value_t = d().ledger.max_waiters_per_account)]
    pub max_waiters_per_account: usize,

    /// Withdrawals waiting for funds at once on the accounts of one principal
    /// (their owner; without --auth-tokens all accounts share one count).
    #[arg(long, env = "BANK_MAX_WAITERS_PER_PRINCIPAL", default_value_t = d().ledger.max_waiters_per_principal)]
    pub max_waiters_per_principal: usize,

    /// Withdrawals waiting for funds at once on the whole server.
    #[arg(long, env = "BANK_MAX_WAITERS", default_value_t = d().ledger.max_waiters)]
    pub max_waiters: usize,

    /// Longest wait for funds, whatever the call's deadline (at most 1h).
    #[arg(long, env = "BANK_MAX_WAIT", default_value_t = hd(d().ledger.max_wait))]
    pub max_wait: humantime::Duration,

    /// Ops of one account holding a blocking thread at once (the rest wait
    /// asynchronously at the account's gate, at no thread cost).
    #[arg(long, env = "BANK_MAX_BLOCKING_PER_ACCOUNT", default_value_t = d().ledger.max_blocking_per_account)]
    pub max_blocking_per_account: usize,

    /// Ops admitted on one account at once; beyond it RESOURCE_EXHAUSTED.
    #[arg(long, env = "BANK_MAX_QUEUED_PER_ACCOUNT", default_value_t = d().ledger.max_queued_per_account)]
    pub max_queued_per_account: usize,

    /// Largest gRPC message accepted or sent, in bytes.
    #[arg(long, env = "BANK_MAX_MESSAGE_BYTES", default_value_t = d().max_message_bytes)]
    pub max_message_bytes: usize,

    /// HTTP/2 streams one connection may have open at once.
    #[arg(long, env = "BANK_MAX_CONCURRENT_STREAMS", default_value_t = d().max_concurrent_streams_per_connection)]
    pub max_concurrent_streams: u32,

    /// Connections served at once; more wait in the kernel's backlog.
    #[arg(long, env = "BANK_MAX_CONNECTIONS", default_value_t = d().max_connections)]
    pub max_connections: usize,

    /// Connections served at once from one IP address; the next one from it is
    /// closed at once. Default 256, or --max-connections if that is smaller;
    /// never more than --max-connections.
    #[arg(long, env = "BANK_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    pub max_connections_per_ip: Option<usize>,

    /// A new connection must finish TLS (when on) and send the HTTP/2 preface
    /// and its first SETTINGS frame within this, or it is closed.
    #[arg(long, env = "BANK_HANDSHAKE_TIMEOUT", default_value_t = hd(d().handshake_timeout))]
    pub handshake_timeout: humantime::Duration,

    /// How often an idle HTTP/2 connection is pinged.
    #[arg(long, env = "BANK_HTTP2_KEEPALIVE_INTERVAL", default_value_t = hd(d().http2_keepalive_interval))]
    pub http2_keepalive_interval: humantime::Duration,

    /// How long a keepalive ping may go unanswered before the connection is closed.
    #[arg(long, env = "BANK_HTTP2_KEEPALIVE_TIMEOUT", default_value_t = hd(d().http2_keepalive_timeout))]
    pub http2_keepalive_timeout: humantime::Duration,

    /// Answers one WithdrawStream buffers before it pauses reading requests.
    #[arg(long, env = "BANK_STREAM_RESPONSE_BUFFER", default_value_t = d().stream_response_buffer)]
    pub stream_response_buffer: usize,

    /// Time in-flight calls get to finish after SIGINT/SIGTERM.
    #[arg(long, env = "BANK_SHUTDOWN_GRACE", default_value_t = hd(d().shutdown_grace))]
    pub shutdown_grace: humantime::Duration,

    /// Serve Prometheus metrics at `GET /metrics` on this address (off by default).
    #[arg(long, env = "BANK_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// The server's certificate chain (PEM); with --tls-key the port speaks only TLS.
    #[arg(long, env = "BANK_TLS_CERT", value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The server's private key (PEM).
    #[arg(long, env = "BANK_TLS_KEY", value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Require client certificates signed by these CAs (PEM): mutual TLS.
    #[arg(long, env = "BANK_TLS_CLIENT_CA", value_name = "PATH", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// `PRINCIPAL TOKEN` lines (`#` comments): every bank.v1 call then needs
    /// `authorization: Bearer TOKEN` and may touch only its principal's accounts.
    /// SIGHUP reloads the file.
    #[arg(long, env = "BANK_AUTH_TOKENS", value_name = "PATH")]
    pub auth_tokens: Option<PathBuf>,

    /// Keep the ledger in this directory: every op and OpenAccount is
    /// answered only once its journal record is fdatasync'ed, and a restart
    /// recovers it. Without it the ledger lives in memory only.
    #[arg(long, env = "BANK_DATA_DIR", value_name = "PATH")]
    pub data_dir: Option<PathBuf>,

    /// With --data-dir: once the journal grows past this many bytes (and
    /// past the last snapshot), a snapshot starts a new journal generation.
    #[arg(long, env = "BANK_JOURNAL_ROLLOVER_BYTES", value_name = "BYTES",
        default_value_t = crate::backend::ledger::storage::SNAPSHOT_AFTER_BYTES)]
    pub journal_rollover_bytes: u64,

    /// Group commit: an account's runner applies up to N queued deposits and
    /// withdrawals under one lock hold, one processing delay and one sync.
    #[arg(long, env = "BANK_BATCH_MAX", default_value_t = 1)]
    pub batch_max: usize,

    /// Keep the ledger in PostgreSQL (`postgres://user@host:port/db`): every
    /// op is one transaction committed before it is answered, and several
    /// servers on one database serve the same accounts. Not with --data-dir.
    #[arg(
        long,
        env = "BANK_DATABASE_URL",
        value_name = "URL",
        conflicts_with = "data_dir"
    )]
    pub database_url: Option<String>,

    /// Connections to the database at most (with --database-url); an op
    /// holds one for its whole transaction, processing delay included.
    #[arg(long, env = "BANK_DATABASE_POOL", default_value_t = crate::backend::pg::DEFAULT_POOL_SIZE)]
    pub database_pool: u32,

    /// Isolation level of the ledger's transactions (with --database-url).
    #[arg(long, env = "BANK_ISOLATION", value_enum, default_value_t = Isolation::ReadCommitted)]
    pub isolation: Isolation,

    /// Log lines as text or as JSON objects (one per line).
    #[arg(long, env = "BANK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Parses a human duration such as `1s`, `250ms` or `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (expected e.g. 1s, 250ms, 0s)"))
}

impl Args {
    /// The server configuration these flags describe, or why it is invalid.
    pub fn config(&self) -> Result<ServerConfig, String> {
        if *self.max_wait > MAX_WAIT_LIMIT {
            return Err(format!("--max-wait is capped at {MAX_WAIT_LIMIT:?}"));
        }
        let nonzero = [
            ("--max-blocking-threads", self.max_blocking_threads),
            ("--max-accounts", self.max_accounts),
            ("--request-id-retention", self.request_id_retention),
            ("--max-request-ids", self.max_request_ids),
            ("--max-blocking-per-account", self.max_blocking_per_account),
            ("--max-queued-per-account", self.max_queued_per_account),
            ("--max-message-bytes", self.max_message_bytes),
            ("--stream-response-buffer", self.stream_response_buffer),
            ("--max-connections", self.max_connections),
            ("--batch-max", self.batch_max),
        ];
        if let Some((flag, _)) = nonzero.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{flag} must be at least 1"));
        }
        let demo = self.unsafe_no_lock || self.inject_bug.is_some();
        if demo && self.data_dir.is_some() {
            // The demos break the monitor on purpose; never on durable data.
            return Err("--unsafe-no-lock and --inject-bug cannot be used with --data-dir".into());
        }
        self.check_database()?;
        self.check_quotas()?;
        let max_connections_per_ip = self.max_connections_per_ip()?;
        if self.handshake_timeout.is_zero() {
            return Err("--handshake-timeout must be more than 0s".into());
        }
        crate::backend::ledger::storage::check_rollover_bytes(self.journal_rollover_bytes)?;
        Ok(ServerConfig {
            ledger: self.ledger_config(),
            max_message_bytes: self.max_message_bytes,
            max_concurrent_streams_per_connection: self.max_concurrent_streams.max(1),
            stream_response_buffer: self.stream_response_buffer,
            shutdown_grace: *self.shutdown_grace,
            max_blocking_threads: self.max_blocking_threads,
            max_connections: self.max_connections,
            max_connections_per_ip,
            handshake_timeout: *self.handshake_timeout,
            http2_keepalive_interval: *self.http2_keepalive_interval,
            http2_keepalive_timeout: *self.http2_keepalive_timeout,
            tls: self.tls_files(),
            auth_tokens: self.auth_tokens.clone(),
            data_dir: self.data_dir.clone(),
            journal_rollover_bytes: self.journal_rollover_bytes,
            database: self.database_settings(),
        })
    }

    /// `--max-accounts-per-principal`, if given, is 1..=`--max-accounts`.
    fn check_quotas(&self) -> Result<(), String> {
        match self.max_accounts_per_principal {
            Some(0) => Err("--max-accounts-per-principal must be at least 1".into()),
            Some(n) if n > self.max_accounts => Err(format!(
                "--max-accounts-per-principal {n} is above --max-accounts {}: one principal could never reach it",
                self.max_accounts
            )),
            _ => Ok(()),
        }
    }

    /// `--max-accounts-per-principal`, or its default capped at `--max-accounts`.
    fn accounts_per_principal(&self) -> usize {
        let default = d().ledger.max_accounts_per_principal.min(self.max_accounts);
        self.max_accounts_per_principal.unwrap_or(default)
    }

    /// `--max-connections-per-ip`: 1..=`--max-connections`; unset, the default
    /// or `--max-connections` if that is smaller.
    fn max_connections_per_ip(&self) -> Result<usize, String> {
        let Some(per_ip) = self.max_connections_per_ip else {
            let default = crate::config::DEFAULT_MAX_CONNECTIONS_PER_IP;
            return Ok(default.min(self.max_connections));
        };
        if per_ip == 0 || per_ip > self.max_connections {
            return Err(format!(
                "--max-connections-per-ip must be 1..=--max-connections ({}), got {per_ip}",
                self.max_connections
            ));
        }
        Ok(per_ip)
    }

    /// The flags that do not go with `--database-url`.
    fn check_database(&self) -> Result<(), String> {
        if self.database_url.is_none() {
            return Ok(());
        }
        if self.data_dir.is_some() {
            return Err("--database-url and --data-dir are two places for one ledger: pick one".into());
        }
        if self.database_pool == 0 || self.database_pool > crate::backend::pg::POOL_SIZE_MAX {
            return Err(format!(
                "--database-pool must be 1..={}",
                crate::backend::pg::POOL_SIZE_MAX
            ));
        }
        if let Some(bug) = self.inject_bug.filter(|b| !crate::backend::pg::supports(*b)) {
            return Err(format!(
                "--inject-bug {} is not planted by the PostgreSQL backend (only lost-update is)",
                bug.name()
            ));
        }
        Ok(())
    }

    fn database_settings(&self) -> Option<DbSettings> {
        Some(DbSettings {
            url: self.database_url.clone()?,
            pool_size: self.database_pool,
            isolation: self.isolation,
        })
    }

    fn ledger_config(&self) -> LedgerConfig {
        LedgerConfig {
            processing_delay: *self.processing_delay,
            unsafe_no_lock: self.unsafe_no_lock,
            inject_bug: self.inject_bug.unwrap_or_default(),
            max_accounts: self.max_accounts,
            max_accounts_per_principal: self.accounts_per_principal(),
            request_id_retention: self.request_id_retention,
            max_request_ids: self.max_request_ids,
            max_waiters_per_account: self.max_waiters_per_account,
            max_waiters_per_principal: self.max_waiters_per_principal,
            max_waiters: self.max_waiters,
            max_wait: *self.max_wait,
            max_blocking_per_account: self.max_blocking_per_account,
            max_queued_per_account: self.max_queued_per_account,
            batch_max: self.batch_max,
            ..LedgerConfig::default()
        }
    }

    fn tls_files(&self) -> Option<TlsFiles> {
        Some(TlsFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
            client_ca: self.tls_client_ca.clone(),
        })
    }
}

/// The zoo's names on the command line. `None` is no value: no flag, no bug.
impl ValueEnum for InjectedBug {
    fn value_variants<'a>() -> &'a [Self] {
        &InjectedBug::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        (*self != InjectedBug::None).then(|| PossibleValue::new(self.name()).help(self.about()))
    }
}

/// The isolation levels' names on the command line.
impl ValueEnum for Isolation {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            Isolation::ReadCommitted,
            Isolation::RepeatableRead,
            Isolation::Serializable,
        ]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_make_a_valid_config() {
        let args = Args::try_parse_from(["bank-server"]).expect("defaults parse");
        let config = args.config().expect("defaults are valid");
        assert_eq!(config.ledger.processing_delay, Duration::from_millis(1));
        assert!(!config.ledger.unsafe_no_lock);
        let defaults = ServerConfig::default();
        assert_eq!(config.ledger.max_request_ids, defaults.ledger.max_request_ids);
        assert_eq!(config.shutdown_grace, defaults.shutdown_grace);
        assert_eq!(config.max_connections, defaults.max_connections);
        assert!(config.tls.is_none() && config.auth_tokens.is_none());
    }

    #[test]
    fn the_journal_rollover_defaults_to_64_mib_and_refuses_below_its_minimum() {
        let parse = |args: &[&str]| {
            let all = [&["bank-server"], args].concat();
            Args::try_parse_from(all).unwrap().config()
        };
        assert_eq!(parse(&[]).unwrap().journal_rollover_bytes, 64 * 1024 * 1024);
        let small = parse(&["--journal-rollover-bytes", "65536"]).unwrap();
        assert_eq!(small.journal_rollover_bytes, 65536);
        let below = parse(&["--journal-rollover-bytes", "65535"]).unwrap_err();
        assert!(
            below.contains("--journal-rollover-bytes must be at least 65536"),
            "{below}"
        );
    }

    #[test]
    fn human_durations_and_bad_values() {
        let args = Args::try_parse_from(["bank-server", "--processing-delay", "1s"]).unwrap();
        assert_eq!(*args.processing_delay, Duration::from_secs(1));
        assert!(Args::try_parse_from(["bank-server", "--processing-delay", "soon"]).is_err());
        let zero = Args::try_parse_from(["bank-server", "--max-accounts", "0"]).unwrap();
        assert!(zero.config().unwrap_err().contains("--max-accounts"));
        let long = Args::try_parse_from(["bank-server", "--max-wait", "2h"]).unwrap();
        assert!(long.config().is_err());
    }

    #[test]
    fn the_per_principal_quota_defaults_below_max_accounts_and_may_not_exceed_it() {
        let quota = |args: &[&str]| {
            let all = [&["bank-server"], args].concat();
            Args::try_parse_from(all).unwrap().config()
        };
        assert_eq!(quota(&[]).unwrap().ledger.max_accounts_per_principal, 10_000);
        let small = quota(&["--max-accounts", "100"]).unwrap();
        assert_eq!(
            small.ledger.max_accounts_per_principal, 100,
            "capped by --max-accounts"
        );
        let set = quota(&["--max-accounts", "100", "--max-accounts-per-principal", "50"]);
        assert_eq!(set.unwrap().ledger.max_accounts_per_principal, 50);
        let above = quota(&["--max-accounts", "100", "--max-accounts-per-principal", "101"]);
        assert!(above.unwrap_err().contains("--max-accounts-per-principal 101"));
        let zero = quota(&["--max-accounts-per-principal", "0"]);
        assert!(zero.unwrap_err().contains("at least 1"));
    }

    #[test]
    fn connection_limits_default_below_max_connections_and_refuse_more() {
        let parse = |args: &[&str]| {
            let argv = ["bank-server"].iter().chain(args).copied();
            Args::try_parse_from(argv).unwrap().config()
        };
        let defaults = parse(&[]).unwrap();
        assert_eq!(defaults.max_connections_per_ip, 256);
        assert_eq!(defaults.handshake_timeout, Duration::from_secs(10));
        let small = parse(&["--max-connections", "5"]).unwrap();
        assert_eq!(
            small.max_connections_per_ip, 5,
            "the default never exceeds --max-connections"
        );
        let set = parse(&["--max-connections-per-ip", "3", "--handshake-timeout", "200ms"]).unwrap();
        assert_eq!(set.max_connections_per_ip, 3);
        assert_eq!(set.handshake_timeout, Duration::from_millis(200));
        let over = parse(&["--max-connections", "5", "--max-connections-per-ip", "6"]);
        assert!(over
            .unwrap_err()
            .contains("--max-connections-per-ip must be 1..=--max-connections (5)"));
        assert!(parse(&["--max-connections-per-ip", "0"]).is_err());
        assert!(parse(&["--handshake-timeout", "0s"])
            .unwrap_err()
            .contains("--handshake-timeout"));
    }

    #[test]
    fn inject_bug_names_round_trip_and_lost_update_is_the_seed_race() {
        for bug in InjectedBug::ALL {
            let args = Args::try_parse_from(["bank-server", "--inject-bug", bug.name()]).unwrap();
            let config = args.config().unwrap();
            assert_eq!(config.ledger.inject_bug, bug);
            assert_eq!(
                config.ledger.racy_withdrawals(),
                bug == InjectedBug::LostUpdate,
                "{bug:?}"
            );
        }
        let config = Args::try_parse_from(["bank-server"]).unwrap().config().unwrap();
        assert_eq!(config.ledger.inject_bug, InjectedBug::None);
        assert!(!config.ledger.racy_withdrawals());
    }

    #[test]
    fn database_flags_parse_and_refuse_what_the_backend_cannot_do() {
        let url = "postgres://bank@127.0.0.1:5432/bank";
        let args = Args::try_parse_from([
            "bank-server",
            "--database-url",
            url,
            "--isolation",
            "serializable",
        ]);
        let db = args.unwrap().config().unwrap().database.expect("a database");
        assert_eq!((db.url.as_str(), db.isolation), (url, Isolation::Serializable));
        assert_eq!(db.pool_size, crate::backend::pg::DEFAULT_POOL_SIZE);
        for bug in crate::backend::ledger::InjectedBug::ALL {
            let args = ["bank-server", "--database-url", url, "--inject-bug", bug.name()];
            let planted = Args::try_parse_from(args).unwrap().config();
            assert!(planted.is_ok(), "{} is planted in SQL too", bug.name());
        }
        let zero = Args::try_parse_from(["bank-server", "--database-url", url, "--database-pool", "0"]);
        assert!(zero.unwrap().config().unwrap_err().contains("--database-pool"));
        assert!(
            Args::try_parse_from(["bank-server", "--database-url", url, "--data-dir", "/tmp/x"]).is_err()
        );
        assert!(Args::try_parse_from(["bank-server", "--isolation", "dirty"]).is_err());
        let none = Args::try_parse_from(["bank-server"]).unwrap().config().unwrap();
        assert!(none.database.is_none());
    }

    #[test]
    fn an_unknown_bug_is_a_usage_error_and_there_is_no_env_fallback() {
        for bad in ["nonsense", "none", ""] {
            let err = Args::try_parse_from(["bank-server", "--inject-bug", bad]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue, "{bad:?}");
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
        // Checked on the parser's definition, not by setting a variable that
        // the tests running in parallel would see.
        let command = <Args as clap::CommandFactory>::command();
        let flag = command
            .get_arguments()
            .find(|a| a.get_id() == "inject_bug")
            .unwrap();
        assert_eq!(flag.get_env(), None);
        let race = command
            .get_arguments()
            .find(|a| a.get_id() == "unsafe_no_lock")
            .unwrap();
        assert_eq!(
            race.get_env(),
            None,
            "a race demo is a flag, never an inherited variable"
        );
        let others = command.get_arguments().filter(|a| a.get_long().is_some());
        let with_env = others.filter(|a| a.get_env().is_some()).count();
        assert!(with_env > 5, "the other flags do have env fallbacks");
    }
}
