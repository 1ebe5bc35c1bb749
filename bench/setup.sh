#!/usr/bin/env bash
# bench/setup.sh — the time a run spends outside its load, at scale: opening
# N fresh accounts before the load, and settling unknown ops and reading
# every account's final state after it. S1: 100,000 accounts on the embedded
# server, target ≤ 10 s. S2: 1,000,000 accounts on a release bank-server
# started with --max-accounts 1000000, target ≤ 100 s. The load in between
# is a token 1,000 ops. Not part of bench/smoke.sh or CI (S2 takes minutes).
#
# Prints `case | open s | settle s | read s | outside the load s | target |
# pass` and writes bench/results/setup.json.
#
# Environment:
#   BENCH_SETUP_CASES  which cases, e.g. "S1" (default: "S1 S2")
#   BENCH_OUT          JSON report path (default bench/results/setup.json)
#   BENCH_PORT         loopback port of S2's server (default 20790: below the ephemeral range)
#   BENCH_NO_BUILD     1: use the binaries in target/release as they are
#
# Exit code: 0 every case met its target; 1 a target was missed; 2 the
# machinery broke (a run failed, a timing was missing).
set -euo pipefail
cd "$(dirname "$0")/.."

CASES="${BENCH_SETUP_CASES:-S1 S2}"
OUT="${BENCH_OUT:-bench/results/setup.json}"
PORT="${BENCH_PORT:-20790}"
BIN=target/release
LOAD=(--requests 1000 --warmup 0s --quiet)

TMP="$(mktemp -d)"
SERVER=""
cleanup() {
  [ -n "$SERVER" ] && { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
  rm -rf "$TMP"
}
trap cleanup EXIT
die() {
  echo "bench/setup: $*" >&2
  exit 2
}

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  cargo build --release -q -p bank-server -p stress-client --bins || die "release build failed"
fi
command -v jq >/dev/null || die "jq is missing (apt-get install jq)"

# Seconds in a Rust Duration's Debug form (`5.07s`, `950.3ms`, `12µs`, `80ns`).
seconds() {
  awk -v d="$1" 'BEGIN {
    if (d ~ /ms$/) print substr(d, 1, length(d) - 2) / 1e3
    else if (d ~ /µs$/) print substr(d, 1, length(d) - 3) / 1e6
    else if (d ~ /ns$/) print substr(d, 1, length(d) - 2) / 1e9
    else print substr(d, 1, length(d) - 1) + 0 }'
}

# The phase timing logged at info level as "<what> ... in <duration>".
phase() {
  local line
  line="$(grep -F "$1" "$TMP/log" | tail -1)" || die "no \"$1\" line in the run's log"
  seconds "${line##* in }"
}

RESULTS=()
FAILED=0
# measure NAME ACCOUNTS TARGET_S [stress-client flags...]
measure() {
  local name="$1" accounts="$2" target="$3"
  shift 3
  echo "bench/setup: $name: $accounts accounts $*" >&2
  local rc=0 open settle read total pass
  RUST_LOG=stress_client=info "$BIN/stress-client" --accounts "$accounts" "${LOAD[@]}" "$@" 2>"$TMP/log" || rc=$?
  [ "$rc" -eq 0 ] || { tail -5 "$TMP/log" >&2; die "$name: stress-client exited with $rc"; }
  open="$(phase "accounts in")"
  settle="$(phase "unknown op(s) in")"
  read="$(phase "final states in")"
  total="$(awk -v a="$open" -v b="$settle" -v c="$read" 'BEGIN { printf "%.2f", a + b + c }')"
  pass="$(awk -v t="$total" -v g="$target" 'BEGIN { print (t <= g) ? "true" : "false" }')"
  [ "$pass" = true ] || FAILED=1
  printf '%s | %s accounts | open %.2f s | settle %.2f s | read %.2f s | outside the load %s s | target <= %s s | %s\n' \
    "$name" "$accounts" "$open" "$settle" "$read" "$total" "$target" "$([ "$pass" = true ] && echo pass || echo MISS)"
  RESULTS+=("$(jq -n --arg case "$name" --argjson accounts "$accounts" --argjson open "$open" \
    --argjson settle "$settle" --argjson read "$read" --argjson total "$total" --argjson target "$target" \
    --argjson pass "$pass" '{case: $case, accounts: $accounts, open_s: $open, settle_s: $settle,
      read_s: $read, outside_load_s: $total, target_s: $target, pass: $pass}')")
}

case_S1() {
  measure S1 100000 10
}

case_S2() {
  "$BIN/bank-server" --listen "127.0.0.1:$PORT" --max-accounts 1000000 >"$TMP/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    kill -0 "$SERVER" 2>/dev/null || die "bank-server exited at start: $(cat "$TMP/server.log")"
    sleep 0.1
  done
  measure S2 1000000 100 --target "http://127.0.0.1:$PORT"
  kill "$SERVER" && wait "$SERVER" || true
  SERVER=""
}

for c in $CASES; do
  declare -F "case_$c" >/dev/null || die "unknown case $c (S1, S2)"
  "case_$c"
done
mkdir -p "$(dirname "$OUT")"
printf '%s\n' "${RESULTS[@]}" | jq -s '{cases: .}' >"$OUT"
echo "bench/setup: wrote $OUT" >&2
exit "$FAILED"
