//! Calls that break the contract on purpose (`--invalid-ratio`): amount 0,
//! an account never opened, a request id already answered reused with
//! another amount. Each must be refused with the contract's status; any
//! other answer (OK above all) is a `protocol` violation. A call that got no
//! answer (unavailable, shed, cut at its deadline, a broken connection: see
//! [`InvalidCall::UNANSWERED`]) says nothing and is skipped; one that
//! applied something also leaves a gap in the account's sequence, which the
//! replay reports on its own.

use crate::history::{History, Invalid, InvalidCall, Kind};
use crate::report::describe;
use crate::report::{Sink, ViolationKind};

/// Reports every invalid call the server answered wrongly.
pub(crate) fn check(h: &History, sink: &mut Sink) {
    for call in h.invalid.iter().filter(|c| c.wrong()) {
        let account = match call.account {
            InvalidCall::NO_INDEX => "(an account never opened)".to_owned(),
            a => describe::account(h, a as usize),
        };
        sink.report(ViolationKind::Protocol, &account, || detail(h, call));
    }
}

/// "a deposit of 0 must be refused with INVALID_ARGUMENT, but it was answered OK".
fn detail(h: &History, call: &InvalidCall) -> String {
    let rpc = match call.kind {
        Kind::Deposit => "deposit",
        Kind::Withdraw => "withdrawal",
        Kind::Transfer => "transfer",
    };
    let amount = call.amount;
    let what = match call.what {
        Invalid::ZeroAmount => format!("a {rpc} of 0 (amount 0 is invalid)"),
        Invalid::UnknownAccount => format!("a {rpc} of {amount} on an account that was never opened"),
        Invalid::ReusedId => format!(
            "a {rpc} of {amount} reusing the request id of {}, already answered, with another amount",
            describe::op_by_index(h, call.op)
        ),
    };
    let expected = match call.also {
        InvalidCall::NO_CODE => code_name(call.expected).to_owned(),
        also => format!("{} or {}", code_name(call.expected), code_name(also)),
    };
    let got = match call.got {
        0 => "it was accepted (OK): the server took an invalid call".to_owned(),
        code => format!("it was answered {}", code_name(code)),
    };
    format!(
        "{what}, sent at {} ns, must be refused with {expected} and change nothing, but {got} (protocol)",
        call.send_ns
    )
}

/// The canonical name of a gRPC status code.
fn code_name(code: u8) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES
        .get(usize::from(code))
        .copied()
        .unwrap_or("an unknown status code")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{AccountState, Op, Outcome};

    const INVALID_ARGUMENT: u8 = 3;
    const NOT_FOUND: u8 = 5;
    const ALREADY_EXISTS: u8 = 6;
    const PERMISSION_DENIED: u8 = 7;

    fn history(calls: Vec<InvalidCall>) -> History {
        History {
            accounts: vec![AccountState {
                final_balance: Some(140),
                final_sequence: Some(1),
                ..AccountState::opened("acct-0".into(), 100)
            }],
            ops: vec![Op {
                account: 0,
                kind: Kind::Deposit,
                outcome: Outcome::Approved,
                resolved: false,
                flags: 0,
                amount: 40,
                send_ns: 10,
                recv_ns: 20,
                balance: 140,
                sequence: 1,
            }],
            invalid: calls,
            ..History::default()
        }
    }

    fn call(what: Invalid, expected: u8, also: u8, got: u8) -> InvalidCall {
        let (account, op) = match what {
            Invalid::UnknownAccount => (InvalidCall::NO_INDEX, InvalidCall::NO_INDEX),
            Invalid::ReusedId => (0, 0),
            Invalid::ZeroAmount => (0, InvalidCall::NO_INDEX),
        };
        InvalidCall {
            what,
            kind: Kind::Deposit,
            account,
            op,
            amount: if what == Invalid::ZeroAmount { 0 } else { 41 },
            expected,
            also,
            got,
            send_ns: 30,
            recv_ns: 40,
        }
    }

    fn protocol_details(h: &History) -> Vec<String> {
        let report = crate::check(h);
        assert!(report
            .violations
            .iter()
            .all(|v| v.kind == ViolationKind::Protocol));
        report.violations.into_iter().map(|v| v.detail).collect()
    }

    #[test]
    fn refusals_with_the_contracts_status_pass() {
        let none = InvalidCall::NO_CODE;
        let h = history(vec![
            call(Invalid::ZeroAmount, INVALID_ARGUMENT, none, INVALID_ARGUMENT),
            call(
                Invalid::UnknownAccount,
                NOT_FOUND,
                PERMISSION_DENIED,
                PERMISSION_DENIED,
            ),
            call(Invalid::UnknownAccount, NOT_FOUND, none, NOT_FOUND),
            call(Invalid::ReusedId, ALREADY_EXISTS, none, ALREADY_EXISTS),
            // Unanswered: shed, unavailable, cut at the deadline.
            call(Invalid::ReusedId, ALREADY_EXISTS, none, 8),
            call(Invalid::ZeroAmount, INVALID_ARGUMENT, none, 14),
            call(Invalid::ZeroAmount, INVALID_ARGUMENT, none, 4),
            call(Invalid::UnknownAccount, NOT_FOUND, none, 2),
        ]);
        let report = crate::check(&h);
        assert!(report.passed, "{report:?}");
    }

    #[test]
    fn a_wrong_answer_is_a_protocol_violation_in_words() {
        let none = InvalidCall::NO_CODE;
        let h = history(vec![
            call(Invalid::ZeroAmount, INVALID_ARGUMENT, none, 0),
            call(Invalid::UnknownAccount, NOT_FOUND, none, PERMISSION_DENIED),
            call(Invalid::ReusedId, ALREADY_EXISTS, none, 10),
        ]);
        let details = protocol_details(&h);
        assert_eq!(details.len(), 3, "{details:?}");
        assert!(details[0].contains("deposit of 0") && details[0].contains("accepted (OK)"));
        assert!(details[1].contains("never opened") && details[1].contains("answered PERMISSION_DENIED"));
        assert!(details[2].contains("op #0 (deposit of 40)") && details[2].contains("ALREADY_EXISTS"));
        assert!(details[2].contains("answered ABORTED"), "{}", details[2]);
    }
}
