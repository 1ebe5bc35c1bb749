#!/usr/bin/env bash
# Siege, attack 6: storage tampering against a release bank-server with
# --data-dir, without and with --auth-tokens. Each must fail to hurt the bank:
#   (a) rm -rf the data dir while a client deposits: the next deposit is
#       UNAVAILABLE (not acknowledged into a file nobody will read), reads
#       continue at the acknowledged balance, later writes stay UNAVAILABLE,
#       and the server's log names the data dir;
#   (b) delete LOCK and start a second server on the same dir: refused;
#   (c) a clean stop, then the journal cut in half: the next start is
#       refused, naming the journal and the missing byte range.
# Runs with SIEGE_SERVER_BIN exported (.ci/siege.sh); the client is
# .ci/siege/storage_client.py in the python venv .ci/interop.sh makes
# (BANK_CI_VENV, default target/ci-venv; made here if missing). ~20 s.
set -euo pipefail
cd "$(dirname "$0")/../.."

SERVER_BIN="${SIEGE_SERVER_BIN:-./target/release/bank-server}"
VENV="${BANK_CI_VENV:-target/ci-venv}"
CLIENT=.ci/siege/storage_client.py
WORK="$(mktemp -d)"
PIDS=()
FAIL_PREFIX="SIEGE storage"
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=.ci/lib.sh
. .ci/lib.sh
need_tools "$SERVER_BIN"

need_venv
PY="$VENV/bin/python"

# Starts bank-server on data dir $1, log $2, port $PORT, plus the auth flags;
# sets SERVER_PID once it says it recovered.
start_server() {
  local dir=$1 log=$2
  "$SERVER_BIN" --listen "127.0.0.1:$PORT" --data-dir "$dir" --processing-delay 0s "${AUTH[@]}" >"$log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  await_log "$log" 'ledger durable' 200 || fail "bank-server did not start on $dir: $(tail -2 "$log")"
}

# Starts a server that must be refused: sets REFUSED_LOG.
expect_refused() {
  local dir=$1 log=$2 pid
  "$SERVER_BIN" --listen "127.0.0.1:$(free_port)" --data-dir "$dir" "${AUTH[@]}" >"$log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.05; done
  if alive "$pid"; then fail "a server on $dir started: $(grep -m1 'ledger durable' "$log")"; fi
  wait "$pid" && fail "the refused server exited 0"
  REFUSED_LOG="$log"
}

client() { "$PY" "$CLIENT" --target "127.0.0.1:$PORT" --token "$TOKEN" "$@"; }

attack() {
  local mode=$1 data="$WORK/$1-data" ready="$WORK/$1-ready" rc=0
  step() { printf -- '-- siege storage (%s): %s\n' "$mode" "$*"; }
  PORT=$(free_port)

  step "(a) rm -rf the data dir while a client deposits"
  start_server "$data" "$WORK/$mode-a.log"
  client deposit-until-refused "acct-$mode" "$ready" >"$WORK/$mode-client.log" 2>&1 &
  local client_pid=$!
  PIDS+=("$client_pid")
  for _ in $(seq 1 200); do [ -e "$ready" ] || ! alive "$client_pid" && break; sleep 0.05; done
  [ -e "$ready" ] || fail "the client never got 20 deposits acknowledged: $(tail -3 "$WORK/$mode-client.log")"
  rm -rf "$data"
  wait "$client_pid" || rc=$?
  cat "$WORK/$mode-client.log"
  [ "$rc" = 0 ] || fail "the client saw a deposit acknowledged after rm -rf, or a wrong answer"
  grep -q "STORAGE TAMPERED.*$data" "$WORK/$mode-a.log" || fail "the server's log does not name $data"
  echo "server log: $(grep -o 'STORAGE TAMPERED[^;]*' "$WORK/$mode-a.log" | head -1)"
  kill -KILL "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true

  step "(b) delete LOCK, start a second server on the same dir"
  data="$WORK/$mode-data-b"
  start_server "$data" "$WORK/$mode-b1.log"
  rm -f "$data/LOCK"
  expect_refused "$data" "$WORK/$mode-b2.log"
  grep -q "in use by another bank-server" "$REFUSED_LOG" || fail "refused without saying why: $(tail -1 "$REFUSED_LOG")"
  echo "second server: $(grep -o 'data dir .* in use by another bank-server' "$REFUSED_LOG" | head -1)"
  kill -KILL "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true

  step "(c) a clean stop, then the journal cut in half"
  data="$WORK/$mode-data-c"
  start_server "$data" "$WORK/$mode-c1.log"
  client deposits "acct-$mode" 30 >>"$WORK/$mode-client.log" 2>&1 || fail "deposits before the clean stop failed"
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || fail "bank-server did not stop cleanly"
  [ -e "$data/CLEAN" ] || fail "a clean stop left no CLEAN marker"
  local size
  size=$(stat -c %s "$data/journal.0")
  truncate -s $((size / 2)) "$data/journal.0"
  expect_refused "$data" "$WORK/$mode-c2.log"
  grep -q "journal.0 is $((size / 2)) bytes.*bytes $((size / 2))..$size are missing" "$REFUSED_LOG" ||
    fail "the cut journal was refused without naming file and range: $(tail -1 "$REFUSED_LOG")"
  echo "restart refused: $(grep -o 'journal.0 is [^;]*' "$REFUSED_LOG" | head -1)"
}

AUTH=() TOKEN=""
attack plain
TOKEN="$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
printf 'alice %s\n' "$TOKEN" >"$WORK/tokens.txt"
AUTH=(--auth-tokens "$WORK/tokens.txt")
attack tokens
echo "siege storage: tampering detected in every case"
