#!/usr/bin/env bash
# bench/storage.sh — issue 9's storage choice, measured: builds and runs
# bench/storage (a standalone crate, not a workspace member) to compare the
# bank-server journal (and a prezeroed variant), SQLite (WAL,
# synchronous=FULL) and redb at making ~100-byte op records durable, groups
# of G records per sync, T committing threads, plus recovery of 1M records
# after a crash. Prints a table; writes bench/results/storage.json.
# About 4-5 minutes: ~2 min of cells, ~2 min to populate and recover 1M
# records per engine (`--recovery-records 200000` for a shorter run); plus a
# first build of ~3 min (SQLite is compiled in).
# Any argument is passed on, e.g. `bench/storage.sh --seconds 0.3 --reps 1`.
# Runs on the disk holding bench/storage/target (override with --dir).
set -euo pipefail
cd "$(dirname "$0")/storage"
echo "filesystem: $(findmnt -n -o FSTYPE,SOURCE,OPTIONS -T . || true)" >&2
cargo build --release --quiet
exec ./target/release/storage-bench "$@"
