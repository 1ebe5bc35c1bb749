#!/usr/bin/env bash
# bench/contention.sh — one hot account under contention: throughput and tail
# latency (p99, p99.9) for each --max-blocking-per-account (gate size) and
# processing delay. This is how the gate default (and the mutex) was chosen;
# see bench/RESULTS.md.
#
# Environment:
#   BENCH_SERVER    bank-server binary (default target/release/bank-server;
#                   point it at another build to compare implementations)
#   BENCH_GATES     gate sizes to try (default "1 2 4")
#   BENCH_DELAYS    processing delays to try (default "0s 100us")
#   BENCH_DURATION  measured seconds per run (default 5), BENCH_WARMUP (default 1)
#   BENCH_REPS      runs per configuration (default 1)
#   BENCH_PORT      first loopback port (default 20800: below the ephemeral range)
# Prints one line per run: delay gate rep ops/s p50 p99 p99.9 max (microseconds).
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER_BIN="${BENCH_SERVER:-target/release/bank-server}"
GATES="${BENCH_GATES:-1 2 4}"
DELAYS="${BENCH_DELAYS:-0s 100us}"
DURATION="${BENCH_DURATION:-5}"
WARMUP="${BENCH_WARMUP:-1}"
REPS="${BENCH_REPS:-1}"
PORT="${BENCH_PORT:-20800}"
CLIENT=target/release/stress-client

[ "${BENCH_NO_BUILD:-0}" = 1 ] || cargo build --release -q -p bank-server -p stress-client --bins
command -v jq >/dev/null || { echo "contention: needs jq" >&2; exit 2; }

TMP="$(mktemp -d)"
SERVER=""
cleanup() {
  [ -z "$SERVER" ] || { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
  rm -rf "$TMP"
}
trap cleanup EXIT

printf '%-6s %-4s %-3s %10s %8s %8s %8s %8s\n' delay gate rep ops/s p50 p99 p99.9 max
for delay in $DELAYS; do
  for gate in $GATES; do
    for rep in $(seq 1 "$REPS"); do
      PORT=$((PORT + 1))
      "$SERVER_BIN" --listen "127.0.0.1:$PORT" --processing-delay "$delay" \
        --max-blocking-per-account "$gate" >"$TMP/server.log" 2>&1 &
      SERVER=$!
      for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
        sleep 0.05
      done
      "$CLIENT" --target "http://127.0.0.1:$PORT" --connections 4 --streams 64 --accounts 1 \
        --duration "${DURATION}s" --warmup "${WARMUP}s" --quiet --json "$TMP/run.json"
      kill "$SERVER"
      wait "$SERVER" 2>/dev/null || true
      SERVER=""
      jq -r --arg d "$delay" --arg g "$gate" --arg r "$rep" \
        '"\($d) \($g) \($r) \(.throughput_ops_per_s | round) \(.latency_us | "\(.p50) \(.p99) \(.p999) \(.max)")"' \
        "$TMP/run.json" | xargs printf '%-6s %-4s %-3s %10s %8s %8s %8s %8s\n'
    done
  done
done
