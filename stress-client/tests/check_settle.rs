//! `check --target` settles the ops a history left in doubt (`unknown`, with
//! a `request_id`) by asking `GetOperation`, as a live run does after its
//! load: one in-doubt withdrawal the server did apply and one transfer it
//! never saw are settled (applied, not applied), the ops the file judged
//! afterwards, and the history passes with no op left to place. Without
//! `--target` the file is judged as it stands.

#[path = "support/servers.rs"]
#[allow(dead_code)]
mod servers;

use std::path::Path;
use std::process::Command;

use bank::v1 as pb;
use pb::bank_client::BankClient;
use serde_json::{json, Value};

fn check(dir: &Path, args: &[&str]) -> (i32, String, Value) {
    let report = dir.join("check.json");
    let out = Command::new(env!("CARGO_BIN_EXE_stress-client"))
        .arg("check")
        .args(args)
        .arg("--json")
        .arg(&report)
        .output()
        .expect("check runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let json = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (out.status.code().expect("exited"), text, json)
}

/// Sends the calls of the story to a real bank; the answers of op 0 and 3.
async fn on_the_server(target: &str) -> (pb::OperationResult, pb::OperationResult) {
    let mut bank = BankClient::connect(target.to_owned()).await.expect("connects");
    for id in ["cs-a", "cs-b"] {
        let open = pb::OpenAccountRequest {
            account_id: id.into(),
            initial_balance: 100,
        };
        bank.open_account(open).await.expect("opens");
    }
    let deposit = |amount, request_id: &str| pb::DepositRequest {
        account_id: "cs-a".into(),
        amount,
        request_id: request_id.into(),
    };
    let first = bank
        .deposit(deposit(10, "cs-0-0"))
        .await
        .expect("deposit")
        .into_inner();
    // Op 1: applied, but (in the history) its answer was lost.
    let withdraw = pb::WithdrawRequest {
        account_id: "cs-a".into(),
        amount: 30,
        request_id: "cs-0-1".into(),
        wait_for_funds: false,
    };
    bank.withdraw(withdraw).await.expect("withdraw");
    // Op 2, a transfer cs-a -> cs-b under "cs-0-2", is never sent.
    let last = bank
        .deposit(deposit(7, "cs-0-3"))
        .await
        .expect("deposit")
        .into_inner();
    (first, last)
}

fn history(first: &pb::OperationResult, last: &pb::OperationResult) -> String {
    let lines = [
        json!({"type":"header","format":"bank-history","version":1,"run_id":"cs","process_id":0,"role":"run",
               "start_anchor":{"mono_ns":0,"wall_unix_ns":1_765_000_000_000_000_000u64}}),
        json!({"type":"account","id":"cs-a","initial_balance":100}),
        json!({"type":"account","id":"cs-b","initial_balance":100}),
        json!({"type":"op","account":0,"kind":"deposit","outcome":"approved","amount":10,"send_ns":1000,
               "recv_ns":2000,"balance":first.balance,"sequence":first.sequence,"request_id":"cs-0-0"}),
        json!({"type":"op","account":0,"kind":"withdraw","outcome":"unknown","amount":30,"send_ns":3000,
               "recv_ns":null,"request_id":"cs-0-1"}),
        json!({"type":"op","account":0,"kind":"transfer","outcome":"unknown","amount":5,"send_ns":5000,
               "recv_ns":null,"to_account":1,"request_id":"cs-0-2"}),
        json!({"type":"op","account":0,"kind":"deposit","outcome":"approved","amount":7,"send_ns":7000,
               "recv_ns":8000,"balance":last.balance,"sequence":last.sequence}),
        json!({"type":"end","accounts":2,"ops":4,"reads":0,"duplicates":0,"invalid":0,"finals":0,
               "end_anchor":{"mono_ns":9000,"wall_unix_ns":1_765_000_000_000_009_000u64}}),
    ];
    lines.iter().map(|l| l.to_string() + "\n").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_target_settles_the_ops_in_doubt_by_get_operation() {
    let target = format!("http://{}", servers::real_bank().await);
    let (first, last) = on_the_server(&target).await;
    assert_eq!(
        (first.balance, last.balance),
        (110, 87),
        "the server applied op 1"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.jsonl");
    std::fs::write(&path, history(&first, &last)).unwrap();
    let file = path.to_str().unwrap();

    // Without --target: the file alone, no final state, two ops in doubt.
    let (code, text, _) = check(dir.path(), &[file]);
    assert_eq!(code, 3, "{text}");

    let (code, text, json) = tokio::task::spawn_blocking({
        let (dir, file, target) = (dir.path().to_owned(), file.to_owned(), target.clone());
        move || check(&dir, &["--target", &target, &file])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{text}");
    let settled = &json["settled"];
    assert_eq!(settled["indeterminate"], 2, "{json}");
    assert_eq!(settled["resolved"], 2, "{json}");
    assert_eq!(settled["resolved_applied"], 1, "{json}");
    // Settled, not placed: no op was left of unknown outcome.
    let checked = &json["consistency"]["checked"];
    assert_eq!(checked["unknown_applied"], 0, "{json}");
    assert_eq!(checked["unknown_not_applied"], 0, "{json}");
    assert!(
        text.contains("resolved by GetOperation: 2, of which 1 had taken effect"),
        "{text}"
    );

    // GetOperation fenced the transfer's id: it can never apply now.
    let mut bank = BankClient::connect(target).await.unwrap();
    let late = pb::TransferRequest {
        from_account_id: "cs-a".into(),
        to_account_id: "cs-b".into(),
        amount: 5,
        request_id: "cs-0-2".into(),
    };
    let late = bank.transfer(late).await.unwrap().into_inner();
    assert_eq!(late.outcome, pb::Outcome::NotApplied as i32, "{late:?}");
}
