//! The `bank-server` binary refuses to start with an error that names the
//! flag and the address or path at fault: a busy `--listen` or
//! `--metrics-listen` port, a missing token file, TLS file or a data dir that
//! is not a directory. Each case runs the real binary and reads its stderr.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a server that should refuse to start may take to exit.
const EXIT_PATIENCE: Duration = Duration::from_secs(20);

/// Runs `bank-server` with `args`; returns its exit status and stderr once it
/// exits, or fails the test if it is still running after [`EXIT_PATIENCE`].
fn refused(args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bank-server"))
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bank-server starts");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    // stderr closes when the process exits; a server that started keeps it open.
    let Ok(text) = rx.recv_timeout(EXIT_PATIENCE) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("bank-server {args:?} did not exit: it should have refused to start");
    };
    let status = child.wait().expect("bank-server exits");
    assert!(!status.success(), "bank-server {args:?} exited 0: {text}");
    text
}

/// The line of `text` that reports the failure.
fn failure(text: &str) -> &str {
    let line = text.lines().find(|l| l.contains("ERROR"));
    line.unwrap_or_else(|| panic!("no ERROR line in: {text}"))
}

/// A port that is taken for as long as the listener lives.
fn busy_port() -> (TcpListener, String) {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    (taken, addr)
}

#[test]
fn a_busy_metrics_port_is_named_with_its_flag() {
    let (_taken, addr) = busy_port();
    let text = refused(&["--listen", "127.0.0.1:0", "--metrics-listen", &addr]);
    let line = failure(&text);
    assert!(line.contains(&format!("--metrics-listen {addr}")), "{text}");
    assert!(!text.contains("listening"), "nothing is said to listen: {text}");
}

#[test]
fn a_busy_grpc_port_is_named_with_its_flag() {
    let (_taken, addr) = busy_port();
    // SO_REUSEADDR does not let a second socket listen on a port in LISTEN.
    let text = refused(&["--listen", &addr]);
    assert!(failure(&text).contains(&format!("--listen {addr}")), "{text}");
}

#[test]
fn a_missing_token_file_is_named_with_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-tokens");
    let path = path.to_str().unwrap();
    let text = refused(&["--listen", "127.0.0.1:0", "--auth-tokens", path]);
    let line = failure(&text);
    assert!(line.contains("--auth-tokens") && line.contains(path), "{text}");
}

#[test]
fn missing_tls_files_are_named_with_their_flags() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let args = ["--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key];
    let text = refused(&args);
    let line = failure(&text);
    assert!(line.contains(&format!("--tls-cert {cert}")), "{text}");
    assert!(line.contains(&format!("--tls-key {key}")), "{text}");
}

#[test]
fn a_data_dir_that_is_a_file_is_named_with_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let path = file.to_str().unwrap();
    let text = refused(&["--listen", "127.0.0.1:0", "--data-dir", path]);
    let line = failure(&text);
    assert!(line.contains("--data-dir") && line.contains(path), "{text}");
}
