#!/usr/bin/env bash
# `stress-client conformance` against real processes. It must pass (exit 0)
# against bank-server in memory (twice in a row on one server: every run
# opens fresh accounts), with --data-dir, with --batch-max 8, with
# --auth-tokens and two principals (every ownership check runs), over TLS
# (certificates made here with openssl), and against
# examples/python/bank_server.py (its venv made as python-server.sh makes it).
# Then, for every --inject-bug, it records whether conformance catches the
# bug (exit 1, and which checks failed); the load verdict's side is
# .ci/zoo.sh's, which fails unless it catches every bug: a bug that
# conformance misses is listed at the end as "caught by the load verdict
# only". Needs the release binaries (cargo build --release --bins), jq,
# openssl and python3. Takes about a minute.
#
# CONFORMANCE_SERVER_BIN and CONFORMANCE_CLIENT_BIN point at other binaries;
# CONFORMANCE_SKIP_PYTHON=1 skips the Python server; CONFORMANCE_KNOWN_FAILURES
# ("id id ...", default none) lets those checks fail against bank-server (a
# branch whose server lacks a rule another branch brings). Everything
# started is killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER_BIN="${CONFORMANCE_SERVER_BIN:-./target/release/bank-server}"
CLIENT_BIN="${CONFORMANCE_CLIENT_BIN:-./target/release/stress-client}"
VENV="${BANK_CI_VENV:-target/ci-venv}"
WORK="$(mktemp -d)"
FAIL_PREFIX=CONFORMANCE
SERVER_PID=""
# shellcheck source=.ci/lib.sh
. .ci/lib.sh

cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

need_tools "$SERVER_BIN" "$CLIENT_BIN"
command -v openssl >/dev/null || fail "openssl is needed to make the test certificates"

# Starts bank-server (case $1, more flags after it) on a free port and waits
# until it accepts; sets SERVER_PID and PORT.
start_server() {
  local name=$1 log="$WORK/$1-server.log" addr=""
  shift
  "$SERVER_BIN" --listen 127.0.0.1:0 --processing-delay 1ms "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 200); do
    addr="$(grep -o 'listening addr=127\.0\.0\.1:[0-9]*' "$log" 2>/dev/null | head -1 || true)"
    [ -n "$addr" ] && break
    alive "$SERVER_PID" || fail "bank-server ($name) exited at startup"
    sleep 0.05
  done
  [ -n "$addr" ] || fail "bank-server ($name) never said where it listens"
  PORT="${addr##*:}"
}

stop_server() {
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

# Runs conformance for case $1 (more flags after it) into $WORK/$1.json;
# sets RC and prints one line.
run_conformance() {
  local name=$1
  shift
  RC=0
  "$CLIENT_BIN" conformance "$@" --json "$WORK/$name.json" >"$WORK/$name-conformance.out" 2>&1 || RC=$?
  if [ -s "$WORK/$name.json" ]; then
    jq -r --arg name "$name" --arg rc "$RC" \
      '"conformance: \($name | . + " " * (22 - length)) exit \($rc): \(.passed) passed, \(.failed) failed, \(.skipped) skipped in \(.elapsed_ms) ms"' \
      "$WORK/$name.json"
  else
    echo "conformance: $name exit $RC, no report"
  fi
}

# Case $1 must pass: exit 0 and no failed check (the flags follow), but
# for the CONFORMANCE_KNOWN_FAILURES.
passes() {
  local name=$1
  run_conformance "$@"
  if [ "$RC" = 1 ] && [ -n "${CONFORMANCE_KNOWN_FAILURES:-}" ] && [ "$name" != python-server ] &&
    [ -z "$(new_failures "$name")" ]; then
    echo "conformance:   $name: only known failures: $(failed_ids "$name")"
    return 0
  fi
  if [ "$RC" != 0 ]; then
    grep -E '^FAIL' "$WORK/$name-conformance.out" >&2 || tail -5 "$WORK/$name-conformance.out" >&2
    fail "$name: expected exit 0, got $RC"
  fi
}

# The failed checks of case $1, comma-separated.
failed_ids() {
  jq -r '[.checks[] | select(.passed == false and .skipped == false) | .id] | join(", ")' "$WORK/$1.json"
}

# The failed checks of case $1 that are not CONFORMANCE_KNOWN_FAILURES.
new_failures() {
  jq -r --arg known " ${CONFORMANCE_KNOWN_FAILURES:-} " \
    '[.checks[] | select(.passed == false and .skipped == false) | .id
      | select(. as $id | $known | contains(" " + $id + " ") | not)] | join(", ")' "$WORK/$1.json"
}

start_server memory
passes memory --target "http://127.0.0.1:$PORT"
passes memory-again --target "http://127.0.0.1:$PORT"
stop_server

start_server data-dir --data-dir "$WORK/data"
passes data-dir --target "http://127.0.0.1:$PORT"
stop_server

start_server batch-max --batch-max 8
passes batch-max --target "http://127.0.0.1:$PORT"
stop_server

ALICE="alice-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
BOB="bob-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
printf '# principal token\nalice %s\nbob %s\n' "$ALICE" "$BOB" >"$WORK/tokens"
start_server auth-tokens --auth-tokens "$WORK/tokens"
passes auth-tokens --target "http://127.0.0.1:$PORT" --token "$ALICE" --second-token "$BOB"
[ "$(jq '[.checks[] | select(.id | startswith("auth-")) | select(.skipped)] | length' "$WORK/auth-tokens.json")" = 0 ] ||
  fail "auth-tokens: some ownership checks were skipped"
stop_server

# TLS: a throwaway CA and a certificate for localhost, as interop.sh makes them.
TLS="$WORK/tls"
mkdir -p "$TLS"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -keyout "$TLS/ca.key" -out "$TLS/ca.pem" -subj "/CN=bank-conformance-ca" 2>/dev/null || fail "openssl: CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$TLS/server.key" -out "$TLS/server.csr" -subj "/CN=localhost" 2>/dev/null || fail "openssl: CSR"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$TLS/ext.cnf"
openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" -CAcreateserial \
  -days 2 -extfile "$TLS/ext.cnf" -out "$TLS/server.pem" 2>/dev/null || fail "openssl: server certificate"
start_server tls --tls-cert "$TLS/server.pem" --tls-key "$TLS/server.key"
passes tls --target "https://localhost:$PORT" --tls-ca "$TLS/ca.pem"
stop_server

# The Python server: no tokens (it has no auth), enough threads for the
# waiters' check (128 calls at once) beside the other checks.
if [ "${CONFORMANCE_SKIP_PYTHON:-0}" != 1 ]; then
  need_venv
  PORT="$(free_port)"
  "$VENV/bin/python" examples/python/bank_server.py --listen "127.0.0.1:$PORT" --processing-delay 1ms \
    --max-workers 512 >"$WORK/python-server.log" 2>&1 &
  SERVER_PID=$!
  await_log "$WORK/python-server.log" "listening on port" 600 || fail "bank_server.py did not start"
  passes python-server --target "http://127.0.0.1:$PORT"
  stop_server
fi

# Every planted bug: caught by conformance (exit 1), or left to the load verdict (zoo.sh).
ZOO_ONLY=()
for bug in lost-update non-atomic-transfer double-apply-retry stale-read partial-apply bad-outcome; do
  start_server "$bug" --inject-bug "$bug"
  run_conformance "bug-$bug" --target "http://127.0.0.1:$PORT"
  stop_server
  [ "$RC" = 0 ] || [ "$RC" = 1 ] || fail "--inject-bug $bug: conformance exited $RC (expected 0 or 1)"
  caught_by="$(new_failures "bug-$bug")"
  if [ -n "$caught_by" ]; then
    echo "conformance:   $bug caught by: $caught_by"
  else
    ZOO_ONLY+=("$bug")
  fi
done
if [ "${#ZOO_ONLY[@]}" -gt 0 ]; then
  echo "conformance: not caught by conformance, caught by the load verdict only (.ci/zoo.sh): ${ZOO_ONLY[*]}"
fi
echo "conformance: passed against bank-server (memory, data-dir, batch-max, tokens, TLS) and the Python server"
