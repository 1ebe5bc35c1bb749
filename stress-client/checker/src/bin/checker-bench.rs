//! Times `bank_checker::check` on a synthetic correct history (1M ops by
//! default, with transfers, a read per 20 ops and a duplicate send per 50)
//! and measures its memory with a counting allocator, printing one JSON
//! line; exits non-zero unless the correct history passes.
//! Usage: `checker-bench [ops] [accounts] [unknown per mille]` (release mode
//! for real numbers; 0 unknown ops by default, 10 for P7c's 1 %).

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bank_checker::{check, synth, Duplicate, Op, Read, TransferLeg};

/// The system allocator, counting live bytes and their high-water mark.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; the counters only
// observe sizes and never affect the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

/// Counts `size` more live bytes and raises the high-water mark.
fn grew(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The positional argument `i`, or `default`.
fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() -> ExitCode {
    let ops = arg(1, 1_000_000) as usize;
    let accounts = arg(2, 8) as u32;
    let unknown_per_mille = arg(3, 0);
    let history = synth::random_history_with(0x5eed, ops, accounts, unknown_per_mille);
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let started = Instant::now();
    let report = check(&history);
    let check_s = started.elapsed().as_secs_f64();
    let extra = PEAK.load(Ordering::Relaxed).saturating_sub(before) as f64;
    let n = history.ops.len().max(1) as f64;
    let extra_per_op = extra / n;
    // The records themselves (ops, transfer legs, reads, duplicates) and the
    // checker's peak on top of them, per op.
    let records = std::mem::size_of::<Op>() * history.ops.len()
        + std::mem::size_of::<TransferLeg>() * history.transfers.len()
        + std::mem::size_of::<Read>() * history.reads.len()
        + std::mem::size_of::<Duplicate>() * history.duplicates.len();
    let bytes_per_op = records as f64 / n + extra_per_op;
    println!(
        "{{\"ops\":{},\"accounts\":{accounts},\"check_s\":{check_s:.3},\"bytes_per_op\":{bytes_per_op:.1},\"extra_bytes_per_op\":{extra_per_op:.1},\"verdict\":\"{}\",\"passed\":{},\"reads\":{},\"duplicates\":{},\"transfers\":{},\"total_violations\":{},\"unknown_ops\":{},\"unknown_sequence_slots\":{}}}",
        history.ops.len(),
        report.verdict.as_str(),
        report.passed,
        report.checked.reads,
        report.checked.duplicates,
        report.checked.transfers,
        report.total_violations,
        report.stats.unknown_ops,
        report.stats.unknown_sequence_slots
    );
    if report.passed {
        ExitCode::SUCCESS
    } else {
        for v in report.violations.iter().take(10) {
            eprintln!("{} {}: {}", v.kind, v.account_id, v.detail);
        }
        for reason in &report.undecided {
            eprintln!("undecided: {reason}");
        }
        ExitCode::FAILURE
    }
}
