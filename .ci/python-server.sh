#!/usr/bin/env bash
# A second bank.v1 implementation: examples/python/bank_server.py (grpcio's
# sync server, stubs generated from proto/ at start-up) is walked through by
# the Python client, then judged by the release stress-client in stream and
# unary modes with transfers and deposits over several accounts. Every run
# must pass (exit 0): the stress-client is the contract's conformance and
# linearizability test, and this is a server it did not grow up with.
# Runs after `cargo build --release --bins`; reuses interop.sh's venv.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==== python-server: %s ====\n' "$*"; }
fail() {
  printf '\n!!!! PYTHON SERVER FAILED: %s\n' "$*" >&2
  exit 1
}

CLIENT_BIN=./target/release/stress-client
VENV="${BANK_CI_VENV:-target/ci-venv}"
LOG=target/ci-python-server.log
REPORT=target/ci-python-server-report.json
# Server threads: grpcio's sync server holds one per open stream, so well
# above the runs' --streams (16) plus their unary calls in flight.
MAX_WORKERS=64

[ -x "$CLIENT_BIN" ] || fail "$CLIENT_BIN is missing: run 'cargo build --release --bins' first"

step "python venv ($VENV) with grpcio, grpcio-tools, grpcio-health-checking"
if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  rm -rf "$VENV"
  python3 -m venv "$VENV" || fail "could not create a venv with python3 -m venv"
fi
PY="$VENV/bin/python"
PIP_NO_INPUT=1 "$PY" -m pip install --quiet --disable-pip-version-check --progress-bar off \
  -r examples/python/requirements.txt || fail "pip install failed"

step "start examples/python/bank_server.py on a free port"
PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
ADDR="127.0.0.1:${PORT}"
"$PY" examples/python/bank_server.py --listen "$ADDR" --processing-delay 1ms \
  --max-workers "$MAX_WORKERS" >"$LOG" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT

# Wait (bounded: 30 s, stubs are generated first) until it accepts connections.
up=no
for _ in $(seq 1 300); do
  kill -0 "$SERVER" 2>/dev/null || { cat "$LOG" >&2; fail "bank_server.py exited at start"; }
  if (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null; then
    up=yes
    break
  fi
  sleep 0.1
done
[ "$up" = yes ] || { cat "$LOG" >&2; fail "bank_server.py did not accept connections on $ADDR within 30 s"; }
echo "  ok: bank_server.py (pid $SERVER) accepts connections on $ADDR"

step "the Python client's walk-through against the Python server"
"$PY" examples/python/bank_client.py --target "$ADDR" >target/ci-python-walkthrough.log 2>&1 ||
  { cat target/ci-python-walkthrough.log >&2; fail "the Python client's walk-through failed"; }
tail -1 target/ci-python-walkthrough.log

# One stress run: must exit 0 with a passed verdict and some ops of each kind.
stress() {
  local what="$1"
  shift
  echo "  stress-client $*"
  local rc=0
  "$CLIENT_BIN" --target "http://$ADDR" --quiet --json "$REPORT" "$@" || rc=$?
  [ -s "$REPORT" ] && jq -c '{operations, consistency: {passed: .consistency.passed, total_violations: .consistency.total_violations}}' "$REPORT"
  [ "$rc" -eq 0 ] || { tail -20 "$LOG" >&2; fail "$what: stress-client exited with $rc"; }
  jq -e '.consistency.passed and .operations.approved > 0 and .operations.insufficient_funds > 0' "$REPORT" >/dev/null ||
    fail "$what: the report lacks a pass, approvals or denials"
  echo "  ok: $what passed"
}

COMMON=(--connections 2 --streams 16 --accounts 5 --initial-balance 300 --warmup 0s --duration 3s
  --deposit-ratio 0.2 --transfer-ratio 0.2 --timeout 5s)

step "stress-client, stream mode (withdrawals on WithdrawStream; deposits, transfers unary)"
stress "stream mode" "${COMMON[@]}" --mode stream --pipeline 2

step "stress-client, unary mode"
stress "unary mode" "${COMMON[@]}" --mode unary

step "SIGTERM: the server exits 0"
kill -TERM "$SERVER"
rc=0
wait "$SERVER" || rc=$?
trap - EXIT
[ "$rc" -eq 0 ] || fail "bank_server.py exited with $rc after SIGTERM"
echo "  ok: bank_server.py exited with 0"

printf '\npython-server: passed\n'
