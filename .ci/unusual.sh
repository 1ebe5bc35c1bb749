#!/usr/bin/env bash
# No false alarms: servers that are correct but unusual must pass the verdict.
# examples/python/unusual_server.py is bank_server.py with quirks the contract
# allows (group commit, failures before and after applying, shed load, late
# answers, reads from a follower, deadlines honoured, bounded retention); the
# release stress-client drives each with reads, duplicates, withdrawals that
# wait for funds and invalid calls, and must exit 0 with a passed verdict,
# no invalid call answered wrongly, and the quirk seen in the report (so a
# quirk that silently stopped happening fails too). Needs the release
# binaries (cargo build --release --bins), jq and python3; reuses the venv of
# interop.sh / python-server.sh. About a minute.
#
# UNUSUAL_CLIENT_BIN points at another stress-client; UNUSUAL_CASES="a b"
# runs only some cases.
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENT_BIN="${UNUSUAL_CLIENT_BIN:-./target/release/stress-client}"
VENV="${BANK_CI_VENV:-target/ci-venv}"
WORK="$(mktemp -d)"
FAIL_PREFIX=UNUSUAL
SERVER=""
# shellcheck source=.ci/lib.sh
source .ci/lib.sh

cleanup() {
  if [ -n "$SERVER" ]; then
    kill -KILL "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Each case: the server's quirk flags, the client's mode and extra flags, and
# a jq test on the report that shows the quirk happened.
CASES=(group-commit fail-before-apply fail-after-apply shed-load late-answers follower-reads deadlines bounded-retention)
declare -A SERVER_FLAGS=(
  [group-commit]="--quirk group-commit --commit-interval 5ms"
  [fail-before-apply]="--quirk fail-before-apply --quirk-rate 0.05"
  [fail-after-apply]="--quirk fail-after-apply --quirk-rate 0.05"
  [shed-load]="--quirk shed-load --shed-above 2"
  [late-answers]="--quirk late-answers --quirk-rate 0.03 --late-by 1.2s"
  [follower-reads]="--quirk follower-reads --follower-lag 2ms"
  [deadlines]="--quirk deadlines --processing-delay 5ms"
  [bounded-retention]="--quirk bounded-retention,fail-after-apply,fail-before-apply --retention 64 --quirk-rate 0.03"
)
R="--accounts 5 --timeout 1s --read-ratio 0.2"
declare -A CLIENT_FLAGS=(
  [group-commit]="$R --mode stream --pipeline 2"
  [fail-before-apply]="$R --mode unary"
  [fail-after-apply]="$R --mode stream --pipeline 2"
  [shed-load]="$R --mode unary"
  [late-answers]="$R --mode unary"
  [follower-reads]="--accounts 5 --timeout 1s --read-ratio 0.5 --mode stream"
  [deadlines]="--accounts 2 --timeout 40ms --read-ratio 0.2 --mode unary"
  [bounded-retention]="$R --mode stream"
)
declare -A SEEN=(
  [group-commit]='.operations.approved > 0'
  [fail-before-apply]='.status_codes.UNAVAILABLE > 0 and .operations.resolved > .operations.resolved_applied'
  [fail-after-apply]='.status_codes.UNAVAILABLE > 0 and .operations.resolved_applied > 0'
  [shed-load]='.status_codes.RESOURCE_EXHAUSTED > 0'
  [late-answers]='.status_codes.DEADLINE_EXCEEDED > 0 and .operations.resolved_applied > 0'
  [follower-reads]='.extras.reads > 20'
  [deadlines]='[.errors[] | select(.message | contains("quirk deadlines"))] | length > 0'
  [bounded-retention]='.operations.unresolved > 0'
)
# Every run: transfers, and every kind of extra call (accounts, --timeout and
# --read-ratio are in each case's flags).
COMMON=(--connections 2 --streams 16 --initial-balance 300 --warmup 0s --duration 2s
  --deposit-ratio 0.2 --transfer-ratio 0.2 --duplicate-ratio 0.1 --wait-for-funds 0.1
  --invalid-ratio 0.05 --quiet)

need_tools "$CLIENT_BIN"
need_venv

# Starts the server with quirk flags $2 (case $1); sets SERVER and PORT.
start_server() {
  local log="$WORK/$1-server.log"
  # shellcheck disable=SC2086 # the flags are a list on purpose
  "$VENV/bin/python" examples/python/unusual_server.py --listen 127.0.0.1:0 --max-workers 96 $2 >"$log" 2>&1 &
  SERVER=$!
  await_log "$log" 'listening on port' 600 || fail "$1: unusual_server.py did not start"
  PORT="$(grep -o 'listening on port [0-9]*' "$log" | awk '{print $4}')"
}

stop_server() {
  kill -TERM "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  SERVER=""
}

# The quirks whose server must also pass `stress-client conformance`: every
# one but shed-load, whose refusal of any second call in flight on an account
# leaves the waiters' check (128 waiting withdrawals, then a deposit) nothing
# to decide. Conformance reruns a check that met a retryable status on fresh
# accounts, resends the monitor checks' ops under their request ids and
# settles a failed waiter with GetOperation, so random faults do not fail it.
declare -A CONFORM=([group-commit]=1 [fail-before-apply]=1 [fail-after-apply]=1 [late-answers]=1
  [follower-reads]=1 [deadlines]=1 [bounded-retention]=1)

# Case $1's server (still running on $PORT) must pass every conformance check.
conform() {
  local name=$1 json="target/unusual-$1-conformance.json" rc=0
  "$CLIENT_BIN" conformance --target "http://127.0.0.1:$PORT" --json "$json" \
    >"$WORK/$name-conformance.log" 2>&1 || rc=$?
  [ "$rc" = 0 ] || fail "$name: conformance exit $rc: $(jq -c '[.checks[] | select(.passed == false and .skipped == false) | {id, detail}][0:3]' "$json" 2>/dev/null || tail -3 "$WORK/$name-conformance.log")"
  printf 'unusual: %-18s conformance passed (%s)\n' "$name" "$(jq -r '"\(.passed) passed, \(.skipped) skipped"' "$json")"
}

# Case $1: the run must pass, refuse nothing wrongly, and show its quirk.
run_case() {
  local name=$1 report="target/unusual-$1.json" rc=0
  start_server "$name" "${SERVER_FLAGS[$name]}"
  rm -f "$report"
  # shellcheck disable=SC2086 # the flags are a list on purpose
  "$CLIENT_BIN" --target "http://127.0.0.1:$PORT" "${COMMON[@]}" ${CLIENT_FLAGS[$name]} --json "$report" \
    >"$WORK/$name-client.log" 2>&1 || rc=$?
  [ -z "${CONFORM[$name]:-}" ] || conform "$name"
  stop_server
  local summary
  summary="$(jq -c '{verdict: .consistency.verdict, violations: [.consistency.violations[]? | .kind + ": " + .detail][0:3], undecided: .consistency.undecided}' "$report" 2>/dev/null || echo '(no report)')"
  [ "$rc" = 0 ] || fail "$name: expected exit 0 (a correct server), got $rc: $summary"
  jq -e '.consistency.verdict == "passed" and .extras.invalid_sent > 0 and .extras.invalid_wrong == 0' "$report" >/dev/null ||
    fail "$name: not passed, or an invalid call was not sent or answered wrongly: $summary"
  jq -e "${SEEN[$name]}" "$report" >/dev/null || fail "$name: the quirk did not show in the report (${SEEN[$name]})"
  printf 'unusual: %-18s passed (%s)\n' "$name" \
    "$(jq -r '"\(.operations.total) ops, \(.operations.errors) failed calls, \(.extras.reads) reads, \(.extras.duplicates) retries, \(.extras.invalid_sent) invalid calls"' "$report")"
}

mkdir -p target
read -r -a SELECTED <<<"${UNUSUAL_CASES:-${CASES[*]}}"
for name in "${SELECTED[@]}"; do
  [ -n "${SERVER_FLAGS[$name]:-}" ] || fail "unknown case $name (known: ${CASES[*]})"
  run_case "$name"
done
echo "unusual: every correct-but-unusual server passed"
