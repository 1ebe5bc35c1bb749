//! History files end to end: a run's `--history` judged by `stress-client
//! check` gives the live verdict (a correct server, a planted bug), the file
//! round-trips the checker's input exactly (plain and zstd), and unreadable
//! input (truncated, garbage, another run) exits 2 naming the file and line.

use std::path::{Path, PathBuf};
use std::process::Command;

use bank_checker::{synth, History};
use serde_json::Value;
use stress_client::history::{self, Anchor, Meta};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stress-client"))
}

/// A run with `--history` and `--json`; its exit code, report and history path.
fn run_with_history(dir: &Path, flags: &str) -> (i32, Value, PathBuf) {
    let (json, hist) = (dir.join("run.json"), dir.join("run.jsonl"));
    let status = bin()
        .args(flags.split_whitespace())
        .args(["--quiet", "--json"])
        .arg(&json)
        .arg("--history")
        .arg(&hist)
        .status()
        .expect("stress-client runs");
    let report = serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("JSON");
    (status.code().expect("exited"), report, hist)
}

/// `check` on `paths`; exit code, stdout+stderr, and the `--json` written (if any).
fn check(dir: &Path, paths: &[&Path]) -> (i32, String, Option<Value>) {
    let json = dir.join("check.json");
    let _ = std::fs::remove_file(&json);
    let out = bin()
        .arg("check")
        .args(paths)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("check runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let report = std::fs::read_to_string(&json)
        .ok()
        .map(|t| serde_json::from_str(&t).expect("JSON"));
    (out.status.code().expect("exited"), text, report)
}

/// The live verdict and the offline one on the same history agree.
fn agree(flags: &str, want_code: i32) {
    let dir = tempfile::tempdir().unwrap();
    let (code, live, hist) = run_with_history(dir.path(), flags);
    assert_eq!(code, want_code, "{live:#}");
    let (checked, text, offline) = check(dir.path(), &[&hist]);
    let offline = offline.unwrap_or_else(|| panic!("no check report: {text}"));
    assert_eq!(checked, code, "{text}");
    let (l, o) = (&live["consistency"], &offline["consistency"]);
    for key in [
        "verdict",
        "total_violations",
        "violations",
        "undecided",
        "checked",
    ] {
        assert_eq!(l[key], o[key], "{key} differs: live {l:#} offline {o:#}");
    }
}

#[test]
fn check_agrees_with_the_live_verdict_of_a_correct_server() {
    agree("--server-delay 0s --streams 8 --requests 800 --accounts 3 --initial-balance 300 --duplicate-ratio 0.1 --read-ratio 0.2 --invalid-ratio 0.05", 0);
}

#[test]
fn check_agrees_with_the_live_verdict_of_a_planted_bug() {
    agree("--server-inject-bug non-atomic-transfer --server-delay 1ms --accounts 2 --transfer-ratio 0.8 --deposit-ratio 0.1 --streams 8 --duration 1s --warmup 0s", 1);
}

fn meta(run_id: &str) -> Meta {
    let anchor = Anchor {
        mono_ns: 0,
        wall_unix_ns: 1_700_000_000_000_000_000,
    };
    Meta {
        run_id: run_id.into(),
        process_id: 0,
        role: "run".into(),
        start_anchor: anchor,
        end_anchor: anchor,
    }
}

fn sample() -> History {
    let mut h = synth::random_history_with(7, 400, 4, 50);
    for (i, a) in h.accounts.iter_mut().enumerate() {
        a.final_not_found = i == 3 && a.final_balance.is_none();
    }
    h
}

fn same(a: &History, b: &History) {
    assert_eq!(a.accounts, b.accounts);
    assert_eq!(a.ops, b.ops);
    assert_eq!(a.transfers, b.transfers);
    assert_eq!(a.reads, b.reads);
    assert_eq!(a.duplicates, b.duplicates);
    assert_eq!(a.invalid, b.invalid);
}

#[test]
fn a_history_round_trips_plain_and_compressed() {
    let h = sample();
    assert!(!h.duplicates.is_empty() && !h.transfers.is_empty() && !h.reads.is_empty());
    let dir = tempfile::tempdir().unwrap();
    for name in ["h.jsonl", "h.jsonl.zst"] {
        let path = dir.path().join(name);
        history::write(&path, &h, &[], &meta("r1")).unwrap();
        let back = history::read(&path).unwrap();
        same(&h, &back.history);
        assert_eq!(back.header.run_id, "r1");
    }
    let plain = std::fs::metadata(dir.path().join("h.jsonl")).unwrap().len();
    let packed = std::fs::metadata(dir.path().join("h.jsonl.zst")).unwrap().len();
    assert!(packed * 3 < plain, "zstd: {packed} of {plain} bytes");
}

fn write_text(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn unreadable_histories_exit_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = Vec::new();
    history::write::write_lines(&mut text, &sample(), &[], &meta("r1")).unwrap();
    let text = String::from_utf8(text).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let good = write_text(dir.path(), "good.jsonl", &text);
    let truncated = write_text(dir.path(), "cut.jsonl", &lines[..lines.len() / 2].join("\n"));
    let garbage = write_text(dir.path(), "garbage.jsonl", "hello\n");
    let bad_line = lines
        .iter()
        .enumerate()
        .map(|(i, l)| if i == 5 { "{\"type\":\"op\"}" } else { l })
        .collect::<Vec<_>>();
    let bad = write_text(dir.path(), "bad.jsonl", &bad_line.join("\n"));
    let mut other = Vec::new();
    history::write::write_lines(&mut other, &sample(), &[], &meta("r2")).unwrap();
    let other = write_text(dir.path(), "other.jsonl", std::str::from_utf8(&other).unwrap());
    let cases: [(&[&Path], &str); 4] = [
        (&[&truncated], "cut.jsonl"),
        (&[&garbage], "garbage.jsonl:1: not a history line"),
        (&[&bad], "bad.jsonl:6: not a history line"),
        (&[&good, &other], "mixed runs"),
    ];
    for (paths, want) in cases {
        let (code, out, _) = check(dir.path(), paths);
        assert_eq!(code, 2, "{out}");
        assert!(out.contains(want), "want {want:?} in {out}");
    }
    assert!(check(dir.path(), &[&truncated]).1.contains("truncated"));
    let (code, out, _) = check(dir.path(), &[&good]);
    assert_ne!(code, 2, "{out}");
}
