//! Three processes on shared accounts, one verdict: `setup` opens the
//! accounts, three `--attach` processes (unary and stream) load them at once,
//! each calls its own verdict inconclusive, and `check --target` over all the
//! histories passes on a correct server and names the bug on a broken one.

#[path = "support/servers.rs"]
#[allow(dead_code)]
mod servers;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use bank_server::backend::ledger::InjectedBug;
use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stress-client"))
}

/// A bank server on 127.0.0.1:0 with `bug` planted (1 ms in the critical section).
async fn server(bug: InjectedBug) -> String {
    let (listener, addr) = servers::listener().await;
    let mut config = bank_server::ServerConfig::default();
    config.ledger.processing_delay = Duration::from_millis(1);
    config.ledger.inject_bug = bug;
    tokio::spawn(bank_server::run(listener, config, std::future::pending()));
    format!("http://{addr}")
}

fn output(cmd: &mut Command) -> (i32, String) {
    let out: Output = cmd.output().expect("stress-client runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().expect("exited"), text)
}

/// setup, then three attached processes at once; their histories and reports.
fn three_processes(dir: &Path, target: &str) -> Vec<PathBuf> {
    let setup = dir.join("setup.jsonl");
    let (code, text) = output(
        bin()
            .args([
                "setup",
                "--target",
                target,
                "--run-id",
                "multi1",
                "--accounts",
                "3",
            ])
            .args(["--initial-balance", "300", "--history"])
            .arg(&setup),
    );
    assert_eq!(code, 0, "setup: {text}");
    let children: Vec<(Child, PathBuf, PathBuf)> = (0..3u32)
        .map(|k| {
            let (hist, json) = (dir.join(format!("h{k}.jsonl")), dir.join(format!("r{k}.json")));
            let mode = if k == 1 { "stream" } else { "unary" };
            let child = bin()
                .args([
                    "--target",
                    target,
                    "--attach",
                    "multi1",
                    "--process-id",
                    &k.to_string(),
                ])
                .args([
                    "--accounts",
                    "3",
                    "--initial-balance",
                    "300",
                    "--requests",
                    "300",
                    "--streams",
                    "6",
                ])
                .args(["--mode", mode, "--transfer-ratio", "0.3", "--quiet", "--history"])
                .arg(&hist)
                .arg("--json")
                .arg(&json)
                .spawn()
                .expect("spawns");
            (child, hist, json)
        })
        .collect();
    let mut paths = vec![setup];
    for (mut child, hist, json) in children {
        let code = child.wait().expect("waits").code();
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("JSON");
        assert_eq!(
            code,
            Some(3),
            "an attached process alone is inconclusive: {report:#}"
        );
        let undecided = report["consistency"]["undecided"].to_string();
        assert!(
            undecided.contains("other processes share these accounts: run `check`"),
            "{undecided}"
        );
        paths.push(hist);
    }
    paths
}

fn check(target: Option<&str>, paths: &[PathBuf], json: &Path) -> (i32, String, Value) {
    let mut cmd = bin();
    cmd.arg("check").args(paths).arg("--json").arg(json);
    if let Some(t) = target {
        cmd.args(["--target", t]);
    }
    let (code, text) = output(&mut cmd);
    let report = serde_json::from_str(&std::fs::read_to_string(json).expect("check report")).expect("JSON");
    (code, text, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_attached_processes_on_a_correct_server_pass_together() {
    let target = server(InjectedBug::None).await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("check.json");
    let paths = tokio::task::spawn_blocking({
        let (dir, target) = (dir.path().to_owned(), target.clone());
        move || three_processes(&dir, &target)
    })
    .await
    .unwrap();
    let (code, text, report) = check(Some(&target), &paths, &json);
    assert_eq!(code, 0, "{text}");
    assert_eq!(report["consistency"]["checked"]["ops"], 900, "{report:#}");
    // Without --target the files hold no final reads: nothing wrong, not all decided.
    let (code, text, _) = check(None, &paths, &json);
    assert_eq!(code, 3, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_update_across_processes_is_caught_by_the_merged_check() {
    let target = server(InjectedBug::LostUpdate).await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("check.json");
    let paths = tokio::task::spawn_blocking({
        let (dir, target) = (dir.path().to_owned(), target.clone());
        move || three_processes(&dir, &target)
    })
    .await
    .unwrap();
    let (code, text, report) = check(Some(&target), &paths, &json);
    assert_eq!(code, 1, "{text}");
    let kinds = report["consistency"]["violations"].to_string();
    assert!(kinds.contains("lost_update"), "{kinds}");
}
