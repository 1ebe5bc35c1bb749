#!/usr/bin/env bash
# Siege, attack 2: "waiting for funds starves everyone". 16 accounts x 64
# wait_for_funds withdrawals parked on empty accounts (60 s deadline) must
# hold no server thread (once the blocking pool's idle threads retire, the
# count is back to within 4 of where it was); a victim's OpenAccount,
# Deposit, Withdraw and GetBalance on a fresh account each answer within 1 s (10 ms processing
# delay), balances right; the waiters past the limits get
# RESOURCE_EXHAUSTED (without tokens the 1,000 of --max-waiters-per-principal
# cover everyone); every waiter is released when its client leaves. Then the
# same with --auth-tokens: bob's 1,000 waiters do not stall alice, and the
# waiter past --max-waiters is refused. Driven by .ci/siege/waiters.py
# (grpcio, in the venv .ci/interop.sh makes). Runs SIEGE_SERVER_BIN.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=.ci/lib.sh
source .ci/lib.sh

WORK="$(mktemp -d)"
FAIL_PREFIX="siege/waiters"
SERVER_BIN="${SIEGE_SERVER_BIN:-./target/release/bank-server}"
VENV="${BANK_CI_VENV:-target/ci-venv}"
SERVER=""
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
[ -x "$SERVER_BIN" ] || fail "$SERVER_BIN is missing: run cargo build --release --bins first"

need_venv
PY="$VENV/bin/python"

# Starts the server with extra flags "$@"; sets SERVER, ADDR and METRICS.
start_server() {
  local port metrics_port
  port="$(free_port)"
  metrics_port="$(free_port)"
  ADDR="127.0.0.1:$port"
  METRICS="127.0.0.1:$metrics_port"
  "$SERVER_BIN" --listen "$ADDR" --metrics-listen "$METRICS" --processing-delay 10ms \
    --shutdown-grace 1s "$@" >"$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do
    alive "$SERVER" || fail "bank-server exited at start"
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  fail "bank-server did not accept connections on $ADDR within 10 s"
}

stop_server() {
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  SERVER=""
}

echo "siege/waiters: no tokens, default limits"
start_server
"$PY" .ci/siege/waiters.py --addr "$ADDR" --metrics "$METRICS" --pid "$SERVER" ||
  fail "the victim was starved (no tokens)"
stop_server

echo "siege/waiters: --auth-tokens, alice and bob, --max-waiters 1010"
ALICE="alice-$RANDOM$RANDOM-token"
BOB="bob-$RANDOM$RANDOM-token"
printf 'alice %s\nbob %s\n' "$ALICE" "$BOB" >"$WORK/tokens"
start_server --auth-tokens "$WORK/tokens" --max-waiters 1010
"$PY" .ci/siege/waiters.py --addr "$ADDR" --metrics "$METRICS" --pid "$SERVER" \
  --alice "$ALICE" --bob "$BOB" || fail "alice was starved by bob's waiters"
stop_server
echo "siege/waiters: parked waiters hold no thread; victims answered within 1 s"
