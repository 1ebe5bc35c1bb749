#!/usr/bin/env bash
# Siege, attacks 4 and 5 of issue 18, with --auth-tokens and two principals
# (alice, bob) against one release bank-server on --data-dir:
#   4. alice's open WithdrawStream keeps working until her token is dropped
#      from the file and the server gets SIGHUP; then its next message is
#      UNAUTHENTICATED and her balance stops changing;
#   5. bob opens accounts until RESOURCE_EXHAUSTED at
#      --max-accounts-per-principal 50 (--max-accounts 100); alice can still
#      open hers; after a restart on the same data dir bob is still refused;
# plus: bob hears PERMISSION_DENIED alike for alice's account and for none,
# and NUL/control characters in ids are INVALID_ARGUMENT.
# The client is Python grpcio (.ci/siege/principals.py) from the venv
# .ci/interop.sh makes (target/ci-venv, or BANK_CI_VENV; made here if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

SERVER_BIN="${SIEGE_SERVER_BIN:-./target/release/bank-server}"
VENV="${BANK_CI_VENV:-target/ci-venv}"
QUOTA=50
WORK="$(mktemp -d)"
SERVER_PID=""

cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

FAIL_PREFIX="SIEGE principals"
# shellcheck source=.ci/lib.sh
. .ci/lib.sh
[ -x "$SERVER_BIN" ] || fail "$SERVER_BIN is missing: run cargo build --release --bins first"

need_venv

printf 'alice alice-siege-token-0123456789\nbob bob-siege-token-9876543210\n' >"$WORK/tokens"
PORT="$(free_port)"

# Starts the server on $WORK/data; its log is $WORK/server-$1.log.
start_server() {
  "$SERVER_BIN" --listen "127.0.0.1:$PORT" --processing-delay 0s \
    --auth-tokens "$WORK/tokens" --data-dir "$WORK/data" \
    --max-accounts 100 --max-accounts-per-principal "$QUOTA" >"$WORK/server-$1.log" 2>&1 &
  SERVER_PID=$!
  await_log "$WORK/server-$1.log" "bank-server listening" 200 || fail "the server did not start"
}

stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || fail "the server did not exit 0 on SIGTERM"
  SERVER_PID=""
}

attack() {
  "$VENV/bin/python" .ci/siege/principals.py "$1" --target "127.0.0.1:$PORT" \
    --tokens "$WORK/tokens" --pid "$SERVER_PID" --quota "$QUOTA" || fail "phase $1"
}

printf '\n==== siege: principals (attacks 4 and 5, NUL ids, existence probes) ====\n'
start_server first
attack first
alive "$SERVER_PID" || fail "the server died"
stop_server
start_server restarted
attack restarted
stop_server
