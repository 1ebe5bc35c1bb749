//! Bad input and unknown names: `invalid-*` (amount 0, empty, over-long or
//! control-byte ids, a transfer to itself, GetOperation without an id: all
//! INVALID_ARGUMENT and nothing changes), `notfound-*` (every RPC on an
//! unknown account: NOT_FOUND; with a token PERMISSION_DENIED is accepted
//! too, since a server may not tell "unknown" from "not yours") and
//! `exists-*` (an account opened twice).

use tonic::Code;

use super::ctx::{dep, get_op, wd, xfer, Cx, Op, Step};
use super::{check, Check};

const INVALID: &[Code] = &[Code::InvalidArgument];

pub fn checks() -> Vec<Check> {
    vec![
        check!("invalid-amount-zero", "Deposit, Withdraw and Transfer of amount 0 are INVALID_ARGUMENT and change nothing", amount_zero),
        check!("invalid-account-id-empty", "an empty account id is INVALID_ARGUMENT on OpenAccount, GetBalance and Deposit", account_empty),
        check!("invalid-account-id-long", "a 129-byte account id is INVALID_ARGUMENT on OpenAccount and Deposit", account_long),
        check!("invalid-request-id-long", "a 65-byte request id is INVALID_ARGUMENT on Deposit, Withdraw, Transfer and GetOperation; nothing changes", request_long),
        check!("invalid-transfer-to-self", "a transfer to the same account is INVALID_ARGUMENT and changes nothing", transfer_to_self),
        check!("invalid-get-operation-empty-id", "GetOperation with an empty request id is INVALID_ARGUMENT", get_operation_empty),
        check!("invalid-account-id-control", "an account id with a NUL, newline or ESC byte is INVALID_ARGUMENT (OpenAccount, GetBalance)", account_control),
        check!("invalid-request-id-control", "a request id with a NUL or other control byte is INVALID_ARGUMENT; nothing changes", request_control),
        check!("notfound-get-balance", "GetBalance of an unknown account is NOT_FOUND (with a token: or PERMISSION_DENIED)", nf_balance),
        check!("notfound-money-ops", "Deposit and Withdraw on an unknown account are NOT_FOUND (with a token: or PERMISSION_DENIED)", nf_money),
        check!("notfound-get-operation", "GetOperation on an unknown account is NOT_FOUND (with a token: or PERMISSION_DENIED) and opens nothing", nf_get_operation),
        check!("exists-open-twice", "OpenAccount of an existing id is ALREADY_EXISTS; the account keeps its balance", open_twice),
    ]
}

/// The account is `balance` at sequence 0 after each of `ops` is refused with INVALID_ARGUMENT.
async fn all_invalid(cx: &Cx, id: &str, balance: u64, ops: Vec<Op>) -> Step<()> {
    for op in ops {
        cx.refused(op, INVALID).await?;
    }
    cx.state(id, balance, 0).await
}

async fn amount_zero(cx: Cx) -> Step<()> {
    let (a, b) = (cx.fresh(100).await?, cx.fresh(100).await?);
    let ops = vec![dep(&a, 0, "z1"), wd(&a, 0, "z2"), xfer(&a, &b, 0, "z3")];
    all_invalid(&cx, &a, 100, ops).await?;
    cx.state(&b, 100, 0).await
}

async fn account_empty(cx: Cx) -> Step<()> {
    cx.open_refused("", 10, INVALID).await?;
    cx.balance_refused(&cx.bank(), "", INVALID).await?;
    cx.refused(dep("", 10, ""), INVALID).await?;
    Ok(())
}

/// `id` padded with `x` to exactly `bytes` bytes.
pub fn padded(id: &str, bytes: usize) -> String {
    let mut s = id.to_owned();
    while s.len() < bytes {
        s.push('x');
    }
    s
}

async fn account_long(cx: Cx) -> Step<()> {
    let long = padded(&cx.account(), 129);
    cx.open_refused(&long, 10, INVALID).await?;
    cx.refused(dep(&long, 10, ""), INVALID).await?;
    Ok(())
}

async fn request_long(cx: Cx) -> Step<()> {
    let (a, b) = (cx.fresh(100).await?, cx.fresh(0).await?);
    let rid = "r".repeat(65);
    let ops = vec![
        dep(&a, 1, &rid),
        wd(&a, 1, &rid),
        xfer(&a, &b, 1, &rid),
        get_op(&a, &rid),
    ];
    all_invalid(&cx, &a, 100, ops).await?;
    cx.state(&b, 0, 0).await
}

async fn transfer_to_self(cx: Cx) -> Step<()> {
    let a = cx.fresh(100).await?;
    all_invalid(&cx, &a, 100, vec![xfer(&a, &a, 10, "t")]).await
}

async fn get_operation_empty(cx: Cx) -> Step<()> {
    let a = cx.fresh(100).await?;
    all_invalid(&cx, &a, 100, vec![get_op(&a, "")]).await
}

async fn account_control(cx: Cx) -> Step<()> {
    for byte in ['\0', '\n', '\x1b'] {
        let id = format!("{}{byte}x", cx.account());
        cx.open_refused(&id, 10, INVALID).await?;
        cx.balance_refused(&cx.bank(), &id, INVALID).await?;
    }
    Ok(())
}

async fn request_control(cx: Cx) -> Step<()> {
    let (a, b) = (cx.fresh(100).await?, cx.fresh(0).await?);
    let ops = vec![
        dep(&a, 1, "r\0"),
        wd(&a, 1, "r\x07x"),
        xfer(&a, &b, 1, "\x1fr"),
        get_op(&a, "q\0"),
    ];
    all_invalid(&cx, &a, 100, ops).await?;
    cx.state(&b, 0, 0).await
}

async fn nf_balance(cx: Cx) -> Step<()> {
    let nowhere = cx.account();
    cx.balance_refused(&cx.bank(), &nowhere, cx.unknown_codes())
        .await?;
    Ok(())
}

async fn nf_money(cx: Cx) -> Step<()> {
    let nowhere = cx.account();
    cx.refused(dep(&nowhere, 1, "d"), cx.unknown_codes()).await?;
    cx.refused(wd(&nowhere, 1, "w"), cx.unknown_codes()).await?;
    cx.refused(super::ctx::wd_wait(&nowhere, 1, "ww"), cx.unknown_codes())
        .await?;
    Ok(())
}

async fn nf_get_operation(cx: Cx) -> Step<()> {
    let nowhere = cx.account();
    cx.refused(get_op(&nowhere, "g"), cx.unknown_codes()).await?;
    // Nothing was created by the lookup: the id can still be opened.
    cx.open(&nowhere, 3).await?;
    cx.state(&nowhere, 3, 0).await
}

async fn open_twice(cx: Cx) -> Step<()> {
    let a = cx.fresh(100).await?;
    cx.open_refused(&a, 999, &[Code::AlreadyExists]).await?;
    cx.open_refused(&a, 100, &[Code::AlreadyExists]).await?;
    cx.state(&a, 100, 0).await
}
