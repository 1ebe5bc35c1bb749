//! Memory per remembered request id, measured (issue 18: the docs said
//! ≈ 150 B, a server's RSS said 290-700 B). Runs the bank-server ledger in
//! process, under the server's allocator (mimalloc) wrapped in a counter of
//! live bytes, and remembers ids of a given length through real deposits on
//! a few accounts: first up to each account's retention (fill), then as many
//! again (steady: every new id makes its account forget its oldest). Prints,
//! per id length, the bytes the allocator handed out and the growth of the
//! process's resident set, each divided by the ids remembered.
//!
//! Both include everything an id costs: its slot in the account's log, the
//! id's text, the index entry, the server-wide budget's node, and the spare
//! capacity of the growable tables holding them (a ring and a hash table
//! double when full, so the per-id number depends on how full they are).

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use bank_server::backend::ledger::{CallContext, Deposit, Ledger, LedgerConfig};
use clap::Parser;
use mimalloc::MiMalloc;

/// mimalloc (as in bank-server), counting the bytes it has handed out and not got back.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

fn count(bytes: usize, sign: isize) {
    LIVE_BYTES.fetch_add(sign * bytes as isize, Ordering::Relaxed);
}

// SAFETY: every call is passed to mimalloc unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { MiMalloc.alloc(layout) };
        if !p.is_null() {
            count(layout.size(), 1);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { MiMalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size(), 1);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { MiMalloc.dealloc(p, layout) };
        count(layout.size(), -1);
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = unsafe { MiMalloc.realloc(p, layout, new_size) };
        if !q.is_null() {
            count(new_size, 1);
            count(layout.size(), -1);
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Measure the memory each remembered request id costs.
#[derive(Debug, Parser)]
#[command(name = "id-memory")]
struct Args {
    /// Request id lengths to measure, in bytes (25: what stress-client sends).
    #[arg(long, value_delimiter = ',', default_value = "16,25,64")]
    id_bytes: Vec<usize>,
    /// Accounts the ids are spread over.
    #[arg(long, default_value_t = 10)]
    accounts: usize,
    /// Ids each account remembers (`--request-id-retention`; the server's default).
    #[arg(long, default_value_t = 100_000)]
    retention: usize,
    /// Print one JSON object per measurement instead of a table.
    #[arg(long)]
    json: bool,
    /// Leave out the table's header (the runs of each length print one row each).
    #[arg(long, hide = true)]
    no_header: bool,
}

/// One measurement: after `phase`, `remembered` ids cost this much.
struct Measured {
    id_bytes: usize,
    phase: &'static str,
    remembered: usize,
    alloc_bytes_per_id: f64,
    rss_bytes_per_id: f64,
}

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// A request id of exactly `len` bytes, unique per `n`.
fn request_id(n: usize, len: usize) -> String {
    let digits = format!("{n:x}");
    format!("{}{digits}", "r".repeat(len.saturating_sub(digits.len())))
}

fn measure(args: &Args, id_bytes: usize) -> Vec<Measured> {
    let ledger = Ledger::new(LedgerConfig {
        processing_delay: Duration::ZERO,
        request_id_retention: args.retention,
        max_request_ids: usize::MAX,
        ..LedgerConfig::default()
    });
    let accounts: Vec<_> = (0..args.accounts)
        .map(|i| {
            let id = format!("account-{i}");
            ledger.open(&id, 0).expect("open");
            (id.clone(), ledger.account(&id).expect("opened"))
        })
        .collect();
    let (live0, rss0) = (LIVE_BYTES.load(Ordering::Relaxed), resident_bytes());
    let ctx = CallContext::detached();
    let mut n = 0;
    let mut out = Vec::new();
    for phase in ["fill", "steady"] {
        for _ in 0..args.retention {
            for (id, account) in &accounts {
                let d = Deposit {
                    account_id: id.clone(),
                    amount: 1,
                    request_id: request_id(n, id_bytes),
                };
                ledger.deposit(account, &d, &ctx).expect("deposit");
                n += 1;
            }
        }
        let remembered = ledger.remembered_request_ids();
        let live = LIVE_BYTES.load(Ordering::Relaxed) - live0;
        let rss = resident_bytes().saturating_sub(rss0);
        out.push(Measured {
            id_bytes,
            phase,
            remembered,
            alloc_bytes_per_id: live as f64 / remembered.max(1) as f64,
            rss_bytes_per_id: rss as f64 / remembered.max(1) as f64,
        });
    }
    out
}

/// Runs this program again for each id length: a fresh process, so that
/// memory freed by one measurement does not hide the next one's growth.
fn each_in_its_own_process(args: &Args) -> std::process::ExitCode {
    let me = std::env::current_exe().expect("this program's path");
    for &len in &args.id_bytes {
        let mut run = std::process::Command::new(&me);
        run.args(["--id-bytes", &len.to_string()])
            .args(["--accounts", &args.accounts.to_string()])
            .args(["--retention", &args.retention.to_string(), "--no-header"]);
        if args.json {
            run.arg("--json");
        }
        if !run.status().is_ok_and(|s| s.success()) {
            return std::process::ExitCode::FAILURE;
        }
    }
    std::process::ExitCode::SUCCESS
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if !args.json && !args.no_header {
        println!("id bytes | phase  | ids remembered | allocated B/id | RSS growth B/id");
    }
    if args.id_bytes.len() > 1 {
        return each_in_its_own_process(&args);
    }
    for &len in &args.id_bytes {
        for m in measure(&args, len.clamp(1, bank_server::backend::ledger::REQUEST_ID_MAX_BYTES)) {
            if args.json {
                println!(
                    "{{\"id_bytes\":{},\"phase\":\"{}\",\"remembered\":{},\"alloc_bytes_per_id\":{:.1},\"rss_bytes_per_id\":{:.1}}}",
                    m.id_bytes, m.phase, m.remembered, m.alloc_bytes_per_id, m.rss_bytes_per_id
                );
            } else {
                println!(
                    "{:>8} | {:<6} | {:>14} | {:>14.1} | {:>15.1}",
                    m.id_bytes, m.phase, m.remembered, m.alloc_bytes_per_id, m.rss_bytes_per_id
                );
            }
        }
    }
    std::process::ExitCode::SUCCESS
}
