//! The durable server over gRPC: what a client saw acknowledged is there
//! after a restart on the same data dir (balances, sequences, stored answers
//! replayed, fenced ids still fenced), with and without group commit, and a
//! second server on the same data dir refuses to start (LOCK deleted or
//! not). Tampering: a data dir removed while serving answers writes
//! UNAVAILABLE (reads continue); a journal cut after a clean stop refuses
//! the next start naming the file and the missing bytes.

#[allow(dead_code, unused_imports)]
mod common;

use common::*;

/// Runs a few ops against a fresh durable server on `dir`, then stops it.
async fn first_life(dir: &std::path::Path, batch_max: usize) -> Vec<OperationResult> {
    let mut server = start(config(|c| {
        c.data_dir = Some(dir.to_owned());
        c.ledger.batch_max = batch_max;
    }))
    .await;
    let bank = &mut server.bank;
    open_all(bank, &[("a", 100), ("b", 0)]).await;
    let answers = vec![
        ok(bank.deposit(deposit("a", 5, "d1")).await),
        ok(bank.withdraw(withdraw("a", 500, "w1")).await),
        ok(bank.transfer(transfer("a", "b", 30, "t1")).await),
        ok(bank.get_operation(get_op("b", "never-sent")).await),
    ];
    server.trigger_shutdown();
    server.stopped().await.unwrap();
    answers
}

async fn restart_keeps_everything(batch_max: usize) {
    let dir = tempfile::tempdir().unwrap();
    let before = first_life(dir.path(), batch_max).await;
    let mut server = start(config(|c| c.data_dir = Some(dir.path().to_owned()))).await;
    let bank = &mut server.bank;
    assert_eq!(state(bank, "a").await, (75, 3));
    assert_eq!(state(bank, "b").await, (30, 1));
    let again = [
        ok(bank.deposit(deposit("a", 5, "d1")).await),
        ok(bank.withdraw(withdraw("a", 500, "w1")).await),
        ok(bank.transfer(transfer("a", "b", 30, "t1")).await),
        ok(bank.get_operation(get_op("b", "never-sent")).await),
    ];
    for (old, new) in before.iter().zip(&again) {
        assert!(new.replayed, "{new:?}");
        assert_eq!(
            OperationResult {
                replayed: old.replayed,
                ..new.clone()
            },
            *old
        );
    }
    assert_eq!(again[3].outcome, Outcome::NotApplied as i32);
    assert_eq!(state(bank, "a").await, (75, 3), "retries changed nothing");
    // A second server on the same data dir is refused (the first still holds
    // it), even with the LOCK file deleted: the directory itself is locked.
    std::fs::remove_file(dir.path().join("LOCK")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second = config(|c| c.data_dir = Some(dir.path().to_owned()));
    let refused = tokio::time::timeout(
        PATIENCE,
        bank_server::run(listener, second, std::future::pending()),
    )
    .await;
    let err = refused
        .expect("refused at once, not serving")
        .expect_err("a second server on the same data dir")
        .to_string();
    assert!(err.contains("in use by another bank-server"), "{err}");
    server.trigger_shutdown();
    server.stopped().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_every_acknowledged_op() {
    restart_keeps_everything(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_every_acknowledged_op_with_group_commit() {
    restart_keeps_everything(64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_removed_while_serving_answers_writes_unavailable_and_keeps_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut server = start(config(|c| c.data_dir = Some(dir.clone()))).await;
    let bank = &mut server.bank;
    open_all(bank, &[("a", 100)]).await;
    ok(bank.deposit(deposit("a", 5, "d1")).await);
    std::fs::remove_dir_all(&dir).unwrap();
    let refused = bank.deposit(deposit("a", 7, "d2")).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        refused.message().contains(&dir.display().to_string()),
        "{refused:?}"
    );
    assert_eq!(code(bank.open_account(open_req("b", 1)).await), Code::Unavailable);
    assert_eq!(state(bank, "a").await, (105, 1), "reads continue");
    server.trigger_shutdown();
    server.stopped().await.unwrap();
    // Restarted on the path: a fresh dir, and no acknowledgement was lost.
    let mut server = start(config(|c| c.data_dir = Some(dir.clone()))).await;
    let missing = server.bank.get_balance(get_balance("a")).await;
    assert_eq!(code(missing), Code::NotFound);
    server.trigger_shutdown();
    server.stopped().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_cut_after_a_clean_stop_refuses_to_start_naming_the_range() {
    let dir = tempfile::tempdir().unwrap();
    first_life(dir.path(), 1).await;
    let journal = dir.path().join("journal.0");
    let full = std::fs::metadata(&journal).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&journal).unwrap();
    file.set_len(full / 2).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let again = config(|c| c.data_dir = Some(dir.path().to_owned()));
    let refused = tokio::time::timeout(
        PATIENCE,
        bank_server::run(listener, again, std::future::pending()),
    )
    .await;
    let err = refused
        .expect("refused at once, not serving")
        .expect_err("a cut journal after a clean stop")
        .to_string();
    let range = format!("bytes {}..{full} are missing", full / 2);
    assert!(err.contains("journal.0") && err.contains(&range), "{err}");
}
