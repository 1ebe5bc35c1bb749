#!/usr/bin/env bash
# The bug zoo against real processes. For each bug bank-server can plant
# (--inject-bug NAME), a short stress run with a workload that exposes it must
# fail its consistency check (exit 1) with a violation of the expected kind;
# then the correct server, under every one of those workloads, must pass
# (exit 0, verdict "passed"). One line per case; on a mismatch the report's
# violations and the last log lines are printed. Needs the release binaries
# (cargo build --release --bins) and jq. Takes about a minute.
#
# ZOO_BUGS="stale-read partial-apply" runs only some; ZOO_SERVER_BIN and
# ZOO_CLIENT_BIN point at other binaries; ZOO_SERVER_ARGS adds flags to every
# server (.ci/postgres.sh runs the zoo with --database-url this way).
# Everything started is killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER_BIN="${ZOO_SERVER_BIN:-./target/release/bank-server}"
CLIENT_BIN="${ZOO_CLIENT_BIN:-./target/release/stress-client}"
WORK="$(mktemp -d)"
SERVER_PID=""
SERVER_LOG=/dev/null

# Each bug, the violation kind the verdict must name, and a workload that
# exposes it (few accounts so that ops collide; every run also gets COMMON).
# Withdrawals go over WithdrawStream (the default mode) except for lost-update,
# which runs unary like the seed example, so both paths are exercised.
BUGS=(lost-update non-atomic-transfer double-apply-retry stale-read partial-apply bad-outcome)
declare -A KIND=(
  [lost-update]=lost_update
  [non-atomic-transfer]=order_cycle
  [double-apply-retry]=double_apply
  [stale-read]=stale_read
  [partial-apply]=unexplained_change
  [bad-outcome]=protocol
)
declare -A WORKLOAD=(
  [lost-update]="--accounts 1 --deposit-ratio 0.3 --transfer-ratio 0 --streams 16 --mode unary"
  [non-atomic-transfer]="--accounts 2 --deposit-ratio 0.1 --transfer-ratio 0.8 --streams 16"
  [double-apply-retry]="--accounts 4 --duplicate-ratio 0.2 --streams 16"
  [stale-read]="--accounts 2 --read-ratio 0.2 --streams 16"
  [partial-apply]="--accounts 2 --deposit-ratio 0.4 --transfer-ratio 0 --streams 16"
  [bad-outcome]="--accounts 2 --deposit-ratio 0.3 --transfer-ratio 0.2 --streams 16"
)
# Every run also sends withdrawals that wait for funds (judged exactly like
# the others; --timeout bounds the wait of those still waiting at the end) and
# calls that must be refused (amount 0, unknown account, reused request id).
COMMON=(--duration 3s --warmup 0s --quiet --wait-for-funds 0.1 --timeout 2s --invalid-ratio 0.02)

cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "ZOO FAILED: $*" >&2
  exit 1
}

# Prints the report's violations and the logs of case $1, then fails with $2.
mismatch() {
  local name=$1 report=$2 why=$3
  {
    echo "--- violations in $report:"
    jq '.consistency.violations' "$report" 2>/dev/null | head -60 || echo "(no readable report)"
    echo "--- last lines of the stress-client log:"
    tail -15 "$WORK/$name-client.log" || true
    echo "--- last lines of the server log:"
    tail -15 "$SERVER_LOG" || true
  } >&2
  fail "$name: $why"
}

for bin in "$SERVER_BIN" "$CLIENT_BIN"; do
  [ -x "$bin" ] || fail "$bin is missing: run cargo build --release --bins first"
done
command -v jq >/dev/null || fail "jq is needed to read the stress-client --json report"

# Starts bank-server (case $1) on a free port (the kernel picks it) with the
# other arguments as flags, and waits (bounded) until it accepts; sets
# SERVER_PID, SERVER_LOG and PORT. Each start has a log of its own: the
# background job creates it late, and an old one would name an old port.
start_server() {
  SERVER_LOG="$WORK/$1-server.log"
  shift
  # shellcheck disable=SC2086 # ZOO_SERVER_ARGS is a list of flags on purpose
  "$SERVER_BIN" --listen 127.0.0.1:0 --processing-delay 1ms ${ZOO_SERVER_ARGS:-} "$@" >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  local addr=""
  for _ in $(seq 1 200); do
    addr="$(grep -o 'listening addr=127\.0\.0\.1:[0-9]*' "$SERVER_LOG" 2>/dev/null | head -1 || true)"
    [ -n "$addr" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || fail "bank-server $* exited at startup: $(tail -5 "$SERVER_LOG")"
    sleep 0.05
  done
  [ -n "$addr" ] || fail "bank-server $* never said where it listens"
  PORT="${addr##*:}"
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  fail "bank-server $* does not accept on port $PORT"
}

stop_server() {
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

# Runs the stress-client for case $1 with workload $2 into report $3; sets RC.
run_client() {
  local name=$1 workload=$2 report=$3
  rm -f "$report"
  RC=0
  # shellcheck disable=SC2086 # the workload is a list of flags on purpose
  "$CLIENT_BIN" --target "http://127.0.0.1:${PORT}" "${COMMON[@]}" $workload --json "$report" \
    >"$WORK/$name-client.log" 2>&1 || RC=$?
}

# Case: bug $1 planted; the verdict must fail and name its kind.
caught() {
  local bug=$1 kind=${KIND[$1]} report="target/zoo-$1.json"
  start_server "$bug" --inject-bug "$bug"
  run_client "$bug" "${WORKLOAD[$bug]}" "$report"
  stop_server
  [ "$RC" = 1 ] || mismatch "$bug" "$report" "expected exit 1 (violation), got $RC"
  jq -e --arg kind "$kind" '[.consistency.violations[]?.kind] | index($kind) != null' "$report" >/dev/null ||
    mismatch "$bug" "$report" "no violation of kind $kind"
  local count
  count="$(jq '.consistency.total_violations // (.consistency.violations | length)' "$report")"
  printf 'zoo: %-20s caught: %s (exit 1, %s violation(s))\n' "$bug" "$kind" "$count"
}

# Case: the correct server (already started) under bug $1's workload must pass.
passes() {
  local bug=$1 report="target/zoo-$1-correct.json"
  run_client "$bug-correct" "${WORKLOAD[$bug]}" "$report"
  [ "$RC" = 0 ] || mismatch "$bug-correct" "$report" "the correct server: expected exit 0, got $RC"
  [ "$(jq -r '.consistency.verdict' "$report")" = passed ] ||
    mismatch "$bug-correct" "$report" "the correct server: the verdict is not \"passed\""
  jq -e '.extras.invalid_sent > 0 and .extras.invalid_wrong == 0' "$report" >/dev/null ||
    mismatch "$bug-correct" "$report" "the correct server: no invalid calls sent, or one answered wrongly"
  printf 'zoo: %-20s correct server under its workload: passed\n' "$bug"
}

mkdir -p target
read -r -a SELECTED <<<"${ZOO_BUGS:-${BUGS[*]}}"
for bug in "${SELECTED[@]}"; do
  [ -n "${KIND[$bug]:-}" ] || fail "unknown bug $bug (known: ${BUGS[*]})"
  caught "$bug"
done
start_server correct
for bug in "${SELECTED[@]}"; do
  passes "$bug"
done
stop_server
echo "zoo: every planted bug was caught, and the correct server passed every workload"
