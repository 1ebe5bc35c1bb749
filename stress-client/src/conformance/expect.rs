//! How a check compares an answer with the contract: [`Want`] (the fields
//! an `OperationResult` must carry), OK and refusal expectations, and the
//! words of a failure: the request sent, the answer got, what was expected,
//! each shown cut to a readable length.

use std::fmt::Debug;

use bank::v1 as pb;
use pb::Outcome;
use tonic::{Code, Status};

use super::ctx::{fail, Step};

/// The longest a request or answer is shown in a failure's detail, in chars.
const SHOWN_CHARS_MAX: usize = 240;

/// `value`'s Debug form, cut to [`SHOWN_CHARS_MAX`] chars.
pub fn show(value: &impl Debug) -> String {
    let text = format!("{value:?}");
    match text.char_indices().nth(SHOWN_CHARS_MAX) {
        Some((at, _)) => format!("{}… ({} chars)", &text[..at], text.chars().count()),
        None => text,
    }
}

/// A status in words: its code and message.
pub fn show_status(status: &Status) -> String {
    format!("status {:?} ({:?})", status.code(), status.message())
}

/// The statuses a correct server may answer to any call, whatever it is:
/// it shed load (RESOURCE_EXHAUSTED), failed before or after applying
/// (UNAVAILABLE: GetOperation or a retry tells which), or answered after the
/// deadline (DEADLINE_EXCEEDED, or CANCELLED as tonic's client reports it).
const RETRYABLE: [Code; 4] = [
    Code::Unavailable,
    Code::ResourceExhausted,
    Code::DeadlineExceeded,
    Code::Cancelled,
];

/// Whether `code` is one a correct server may answer to any call (see [`RETRYABLE`]).
pub fn is_retryable(code: Code) -> bool {
    RETRYABLE.contains(&code)
}

/// Whether a failure's `detail` shows a call answered with a retryable
/// status (as [`show_status`] writes it) where the check expected another
/// answer: a fault of the moment, not by itself a broken contract.
pub fn met_retryable(detail: &str) -> bool {
    RETRYABLE.iter().any(|code| {
        // "got status …" for a call; "then status …" or "with status …"
        // for a stream's end.
        ["got", "then", "with"]
            .iter()
            .any(|how| detail.contains(&format!("{how} status {code:?} (")))
    })
}

/// What an `OperationResult` must say; `None` fields are not checked.
#[derive(Debug, Clone, Default)]
pub struct Want {
    pub outcome: Option<Outcome>,
    pub balance: Option<u64>,
    pub sequence: Option<u64>,
    pub replayed: Option<bool>,
    pub to_balance: Option<u64>,
    pub to_sequence: Option<u64>,
}

impl Want {
    /// APPROVED with this balance and sequence, not a replay.
    pub fn approved(balance: u64, sequence: u64) -> Want {
        Want::outcome(Outcome::Approved, balance, sequence)
    }

    /// INSUFFICIENT_FUNDS with this balance and sequence, not a replay.
    pub fn denied(balance: u64, sequence: u64) -> Want {
        Want::outcome(Outcome::InsufficientFunds, balance, sequence)
    }

    /// NOT_APPLIED (balance and sequence 0) with this `replayed` flag.
    pub fn not_applied(replayed: bool) -> Want {
        Want {
            replayed: Some(replayed),
            ..Want::outcome(Outcome::NotApplied, 0, 0)
        }
    }

    fn outcome(outcome: Outcome, balance: u64, sequence: u64) -> Want {
        Want {
            outcome: Some(outcome),
            balance: Some(balance),
            sequence: Some(sequence),
            replayed: Some(false),
            ..Want::default()
        }
    }

    /// The same, with a transfer's target balance and sequence.
    pub fn to(self, to_balance: u64, to_sequence: u64) -> Want {
        Want {
            to_balance: Some(to_balance),
            to_sequence: Some(to_sequence),
            ..self
        }
    }

    /// The same, as a replay of a stored result.
    pub fn replay(self) -> Want {
        Want {
            replayed: Some(true),
            ..self
        }
    }

    /// The fields of `got` that differ from what is wanted, in words.
    fn mismatches(&self, got: &pb::OperationResult) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(o) = self.outcome {
            if got.outcome != o as i32 {
                out.push(format!(
                    "outcome {} (want {})",
                    outcome_name(got.outcome),
                    o.as_str_name()
                ));
            }
        }
        let numbers = [
            ("balance", self.balance, got.balance),
            ("sequence", self.sequence, got.sequence),
            ("to_balance", self.to_balance, got.to_balance),
            ("to_sequence", self.to_sequence, got.to_sequence),
        ];
        for (name, want, got) in numbers {
            if want.is_some_and(|w| w != got) {
                out.push(format!("{name} {got} (want {})", want.unwrap_or_default()));
            }
        }
        if self.replayed.is_some_and(|r| r != got.replayed) {
            out.push(format!("replayed {} (want {})", got.replayed, !got.replayed));
        }
        out
    }
}

/// An outcome's name, or the number when it is not in the enum.
pub fn outcome_name(value: i32) -> String {
    Outcome::try_from(value).map_or_else(
        |_| format!("{value} (not in the enum)"),
        |o| o.as_str_name().into(),
    )
}

/// The value of an OK answer, else the failure that shows `sent` and the status.
pub fn expect_ok<T>(sent: &str, answer: Result<T, Status>) -> Step<T> {
    answer.or_else(|status| fail(format!("sent {sent}; got {}; expected OK", show_status(&status))))
}

/// `answer` must be OK and match `want`.
pub fn check_answer(
    sent: &str,
    answer: Result<pb::OperationResult, Status>,
    want: &Want,
) -> Step<pb::OperationResult> {
    let got = expect_ok(sent, answer)?;
    let wrong = want.mismatches(&got);
    if wrong.is_empty() {
        return Ok(got);
    }
    fail(format!("sent {sent}; got {}: {}", show(&got), wrong.join(", ")))
}

/// `answer` must be a status with one of `codes`.
pub fn check_refused<T: Debug>(sent: &str, answer: Result<T, Status>, codes: &[Code]) -> Step<Code> {
    match answer {
        Ok(got) => fail(format!(
            "sent {sent}; got OK {}; expected {}",
            show(&got),
            codes_text(codes)
        )),
        Err(status) if codes.contains(&status.code()) => Ok(status.code()),
        Err(status) => fail(format!(
            "sent {sent}; got {}; expected {}",
            show_status(&status),
            codes_text(codes)
        )),
    }
}

/// `codes` in words: "NotFound or PermissionDenied".
pub fn codes_text(codes: &[Code]) -> String {
    let names: Vec<String> = codes.iter().map(|c| format!("{c:?}")).collect();
    names.join(" or ")
}

/// Fails with `what` unless `ok`.
pub fn ensure(ok: bool, what: impl FnOnce() -> String) -> Step<()> {
    if ok {
        Ok(())
    } else {
        fail(what())
    }
}
