#!/usr/bin/env bash
# bench/smoke.sh — proves the benchmark machinery works, in well under two
# minutes once the release binaries are built: every case of bench/run.sh
# with 1 s runs. It fails only when the machinery breaks (a tool or a
# consistency check fails, a number is missing), never on a missed target:
# 1 s ratios on a shared CI machine are noise.
set -euo pipefail
cd "$(dirname "$0")/.."
# P4's pairs and P6's repeats: 2 each (the machinery, not the median).
BENCH_SMOKE=1 BENCH_DURATION="${BENCH_DURATION:-1}" BENCH_WARMUP="${BENCH_WARMUP:-1}" \
  BENCH_RUNS="${BENCH_RUNS:-2}" BENCH_P14_OPS="${BENCH_P14_OPS:-20000}" BENCH_OUT="${BENCH_OUT:-bench/results/smoke.json}" exec bench/run.sh
