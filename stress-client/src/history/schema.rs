//! The lines of a history file (format `bank-history`, version 1; see
//! docs/history.md): one JSON object per line, told apart by `type`. These
//! are the serde shapes only; `write` and `read` convert them to and from the
//! checker's records, so the file is exactly what the in-run checker gets.

use serde::{Deserialize, Serialize};

/// The `format` of the header line.
pub const FORMAT: &str = "bank-history";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    Header(Header),
    Account(AccountLine),
    Op(OpLine),
    Read(ReadLine),
    Duplicate(DuplicateLine),
    Invalid(InvalidLine),
    Final(FinalLine),
    End(EndLine),
}

/// A monotonic time of the process and the wall clock read at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub mono_ns: u64,
    /// Nanoseconds since the Unix epoch (UTC).
    pub wall_unix_ns: u64,
}

/// The first line: what the file is, whose, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub run_id: String,
    pub process_id: u32,
    /// "setup", "run" (a run on accounts it opened itself) or "attached".
    pub role: String,
    pub start_anchor: Anchor,
}

/// An account; accounts are numbered 0, 1, … in the order of their lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountLine {
    pub id: String,
    pub initial_balance: u64,
}

/// A money op; ops are numbered 0, 1, … in the order of their lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpLine {
    pub account: u32,
    pub kind: String,
    pub outcome: String,
    #[serde(default)]
    pub resolved: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    pub amount: u64,
    pub send_ns: u64,
    /// `null`: no reply ever arrived.
    pub recv_ns: Option<u64>,
    #[serde(default)]
    pub balance: u64,
    #[serde(default)]
    pub sequence: u64,
    /// Transfers only: the target leg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_account: Option<u32>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub to_balance: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub to_sequence: u64,
    /// The request id the op was sent with (optional): what `check --target`
    /// asks `GetOperation` about when the outcome is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A GetBalance made under load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadLine {
    pub account: u32,
    #[serde(default)]
    pub not_found: bool,
    pub send_ns: u64,
    pub recv_ns: u64,
    #[serde(default)]
    pub balance: u64,
    #[serde(default)]
    pub sequence: u64,
}

/// A second send of op `op` under its request id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DuplicateLine {
    pub op: u32,
    pub at_once: bool,
    pub outcome: String,
    #[serde(default)]
    pub aborted: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    pub send_ns: u64,
    pub recv_ns: Option<u64>,
    #[serde(default)]
    pub balance: u64,
    #[serde(default)]
    pub sequence: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub to_balance: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub to_sequence: u64,
}

/// A call that breaks the contract on purpose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvalidLine {
    pub what: String,
    pub kind: String,
    /// `null`: an account that was never opened.
    pub account: Option<u32>,
    /// For `reused_id`: the op whose request id it reused.
    #[serde(default)]
    pub op: Option<u32>,
    pub amount: u64,
    pub expected: u8,
    /// `null`: no other status is allowed.
    #[serde(default)]
    pub also: Option<u8>,
    pub got: u8,
    pub send_ns: u64,
    pub recv_ns: u64,
}

/// The state of an account read after the load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinalLine {
    pub account: u32,
    pub balance: Option<u64>,
    pub sequence: Option<u64>,
    #[serde(default)]
    pub not_found: bool,
}

/// The last line: how many of each came before (a truncated file has none)
/// and the second clock anchor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndLine {
    pub accounts: u64,
    pub ops: u64,
    pub reads: u64,
    pub duplicates: u64,
    pub invalid: u64,
    pub finals: u64,
    pub end_anchor: Anchor,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Anchor {
    /// The clocks read now; `mono_ns` counts from `origin` (the run clock's zero).
    pub fn now(origin: std::time::Instant) -> Anchor {
        let mono = std::time::Instant::now().saturating_duration_since(origin);
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Anchor {
            mono_ns: u64::try_from(mono.as_nanos()).unwrap_or(u64::MAX),
            wall_unix_ns: u64::try_from(wall.as_nanos()).unwrap_or(u64::MAX),
        }
    }
}
