#!/usr/bin/env bash
# Fault injection against real processes. Needs the release binaries
# (cargo build --release --bins) and jq. Run from anywhere; takes ~25 s.
#
#   (a) 10,000 WithdrawStreams opened at once against one bank-server: it keeps
#       answering, the only error status is RESOURCE_EXHAUSTED, the run's
#       consistency check passes, and its peak RSS stays under a bound.
#   (b) a stress-client SIGKILLed mid-run: the server stays up, notices the
#       dead connections, and a following run against it passes its check.
#   (c) SIGTERM to the server under load: it exits 0 within --shutdown-grace
#       after draining (no "grace period over"), and the load saw OK and
#       UNAVAILABLE (refused while shutting down / server gone), plus at most
#       a few CANCELLED/INTERNAL for calls racing the final connection close.
#   (d) SIGTERM the moment the server says it listens (CPU contended): exit 0.
#
# FAULTS_SECTIONS="a c" runs only some sections; FAULTS_SERVER_BIN and
# FAULTS_CLIENT_BIN point at other binaries. Everything started is killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER_BIN="${FAULTS_SERVER_BIN:-./target/release/bank-server}"
CLIENT_BIN="${FAULTS_CLIENT_BIN:-./target/release/stress-client}"
RSS_LIMIT_KB=$((1024 * 1024)) # 1 GiB
WORK="$(mktemp -d)"
PIDS=()

step() { printf '\n==== faults: %s ====\n' "$*"; }

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

FAIL_PREFIX=FAULTS
FAIL_LOG_LINES=15
FAIL_LOG_SKIP='could not settle op'
# shellcheck source=.ci/lib.sh
. .ci/lib.sh
need_tools "$SERVER_BIN" "$CLIENT_BIN"

# Waits at most $2 seconds for child $1 to exit; sets RC to its exit code, or
# to "timeout" if it is still running. (Not in a $(...) subshell: only this
# shell can reap its children.)
wait_exit() {
  local pid=$1 polls=$(($2 * 20))
  for _ in $(seq 1 "$polls"); do
    alive "$pid" || break
    sleep 0.05
  done
  RC=timeout
  if ! alive "$pid"; then
    RC=0
    wait "$pid" 2>/dev/null || RC=$?
  fi
}

# A /proc/PID/status field in kB (VmRSS: now, VmHWM: peak).
mem_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# TCP connections the server on port $1 has accepted and not yet closed.
established() {
  local hex
  hex="$(printf '%04X' "$1")"
  awk -v p=":$hex" '$2 ~ p"$" && $4 == "01"' /proc/net/tcp | wc -l
}

# Waits (bounded) until the server on port $1 holds at least $2 connections.
await_connections() {
  for _ in $(seq 1 200); do
    [ "$(established "$1")" -ge "$2" ] && return 0
    sleep 0.05
  done
  fail "the load never connected to port $1"
}

# Starts bank-server on a free port with extra flags; sets SERVER_PID, ADDR, PORT.
start_server() {
  local log="$WORK/$1-server.log"
  shift
  "$SERVER_BIN" --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  ADDR=""
  for _ in $(seq 1 200); do
    ADDR="$(grep 'listening' "$log" | grep -o '127\.0\.0\.1:[0-9]*' | head -1 || true)"
    [ -n "$ADDR" ] && break
    alive "$SERVER_PID" || fail "bank-server exited at startup"
    sleep 0.05
  done
  [ -n "$ADDR" ] || fail "bank-server never said where it listens"
  [ "$(cat "/proc/$SERVER_PID/comm")" = bank-server ] || fail "pid $SERVER_PID is not bank-server"
  PORT="${ADDR##*:}"
  echo "bank-server pid $SERVER_PID on $ADDR ($*)"
}

# The status codes of a --json report, one per line.
codes_of() { jq -r '.status_codes | keys[]' "$1"; }
code_count() { jq -r --arg c "$2" '.status_codes[$c] // 0' "$1"; }

# Fails unless every status code in report $1 is one of the others.
only_codes() {
  local report=$1 code
  shift
  for code in $(codes_of "$report"); do
    case " $* " in
      *" $code "*) ;;
      *) fail "status $code in $(basename "$report") (allowed: $*): $(jq -c .status_codes "$report")" ;;
    esac
  done
}

# A short, ordinary stress run against $ADDR that must pass its check.
healthy_run() {
  local name=$1 rc=0
  timeout 60 "$CLIENT_BIN" --target "http://$ADDR" --connections 4 --streams 64 --duration 2s \
    --warmup 0s --accounts 2 --quiet --json "$WORK/$name.json" \
    2>"$WORK/$name-client.log" || rc=$?
  [ "$rc" -eq 0 ] || fail "the $name run exited $rc: $(jq -c '.consistency | {passed, total_violations}' "$WORK/$name.json" 2>/dev/null || true)"
  echo "$name run: exit 0 (consistency passed), $(jq -r .operations.total "$WORK/$name.json") ops, status codes $(jq -c .status_codes "$WORK/$name.json")"
}

# ---------------------------------------------------------------------------
section_a() {
  step "(a) 10,000 WithdrawStreams opened at once"
  start_server a --processing-delay 1ms --max-queued-per-account 500 --max-wait 1s
  echo "RSS before the load: $(mem_kb "$SERVER_PID" VmRSS) kB"
  # 10,000 workers started at once over 10 connections (1,000 streams each,
  # under the server's 1,024 per connection); every op a withdrawal over the
  # worker's own WithdrawStream, two per stream, on 8 accounts: up to 1,250
  # streams per account against a queue bound of 500.
  rc=0
  started=$(date +%s%N)
  timeout 150 "$CLIENT_BIN" --target "http://$ADDR" --connections 10 --streams 10000 --requests 20000 \
    --warmup 0s --mode stream --accounts 8 --deposit-ratio 0 --transfer-ratio 0 --initial-balance 1000000 \
    --timeout 60s --resolve-timeout 20s --quiet --json "$WORK/a.json" 2>"$WORK/a-client.log" || rc=$?
  echo "stress-client exit $rc after $((($(date +%s%N) - started) / 1000000)) ms"
  [ "$rc" -eq 0 ] || fail "the 10k-stream run exited $rc: $(jq -c '.consistency | {passed, total_violations, violations: .violations[:3]}' "$WORK/a.json" 2>/dev/null || true)"
  echo "status codes $(jq -c .status_codes "$WORK/a.json"); operations $(jq -c .operations "$WORK/a.json")"
  only_codes "$WORK/a.json" OK RESOURCE_EXHAUSTED
  [ "$(jq -r .operations.total "$WORK/a.json")" -eq 20000 ] || fail "not every op was recorded"
  [ "$(code_count "$WORK/a.json" OK)" -gt 0 ] || fail "no op succeeded"
  # RESOURCE_EXHAUSTED shows more than 500 ops queued on one account at once;
  # whether the client ramps up that fast depends on the machine, so it is
  # reported, not required (server/tests/hostile.rs holds 10,000 streams open
  # at once deterministically).
  echo "RESOURCE_EXHAUSTED answers (queue bound 500 per account hit): $(code_count "$WORK/a.json" RESOURCE_EXHAUSTED)"
  alive "$SERVER_PID" || fail "bank-server died under 10,000 streams"
  healthy_run a-after
  peak=$(mem_kb "$SERVER_PID" VmHWM)
  echo "bank-server peak RSS (VmHWM) $peak kB = $((peak / 1024)) MiB; RSS now $(mem_kb "$SERVER_PID" VmRSS) kB; bound $((RSS_LIMIT_KB / 1024)) MiB"
  [ "$peak" -le "$RSS_LIMIT_KB" ] || fail "peak RSS $peak kB is over the bound"
  kill -TERM "$SERVER_PID"
  wait_exit "$SERVER_PID" 15
  [ "$RC" = 0 ] || fail "bank-server exit $RC on SIGTERM"
}

# ---------------------------------------------------------------------------
section_b() {
  step "(b) a stress-client SIGKILLed mid-run"
  start_server b --processing-delay 1ms --max-wait 5s
  "$CLIENT_BIN" --target "http://$ADDR" --connections 4 --streams 256 --duration 30s --warmup 0s \
    --accounts 2 --amount 50..500 --wait-for-funds 0.3 --quiet >"$WORK/b-killed-client.log" 2>&1 &
  victim=$!
  PIDS+=("$victim")
  await_connections "$PORT" 4
  sleep 2 # two seconds into a 30 s run
  alive "$victim" || fail "the client ended before it could be killed"
  echo "server holds $(established "$PORT") connections from the client; SIGKILL to stress-client pid $victim"
  kill -KILL "$victim"
  wait_exit "$victim" 5
  [ "$RC" = 137 ] || fail "the client ended with $RC, not by SIGKILL"
  for _ in $(seq 1 200); do
    [ "$(established "$PORT")" -eq 0 ] && break
    sleep 0.05
  done
  [ "$(established "$PORT")" -eq 0 ] || fail "the server still holds the dead client's connections"
  echo "the server closed every connection of the dead client"
  alive "$SERVER_PID" || fail "bank-server died with its client"
  healthy_run b-after
  echo "bank-server peak RSS $(mem_kb "$SERVER_PID" VmHWM) kB"
  kill -TERM "$SERVER_PID"
  wait_exit "$SERVER_PID" 15
  [ "$RC" = 0 ] || fail "bank-server exit $RC on SIGTERM"
}

# ---------------------------------------------------------------------------
section_c() {
  step "(c) SIGTERM to the server under load"
  GRACE=5
  start_server c --processing-delay 2ms --shutdown-grace "${GRACE}s" --max-wait 1s
  # Open loop at 1,000 ops/s for 8 s; withdrawals that wait for funds (up to
  # 1 s) are in flight when the signal lands. --resolve-timeout 0s: after the
  # server is gone nobody can settle the failed ops, so do not wait for it.
  "$CLIENT_BIN" --target "http://$ADDR" --connections 4 --streams 128 --rate 1000 --requests 8000 \
    --warmup 0s --accounts 2 --amount 50..500 --wait-for-funds 0.2 --timeout 5s --resolve-timeout 0s \
    --quiet --json "$WORK/c.json" >"$WORK/c-client.log" 2>&1 &
  load=$!
  PIDS+=("$load")
  await_connections "$PORT" 4
  sleep 2 # two seconds into an 8 s run
  alive "$load" || fail "the load ended before the signal"
  sigterm_at=$(date +%s%N)
  kill -TERM "$SERVER_PID"
  wait_exit "$SERVER_PID" $((GRACE + 10))
  rc=$RC
  took_ms=$((($(date +%s%N) - sigterm_at) / 1000000))
  echo "bank-server exit $rc, ${took_ms} ms after SIGTERM (grace ${GRACE}s)"
  [ "$rc" = 0 ] || fail "bank-server exit $rc on SIGTERM under load"
  [ "$took_ms" -le $((GRACE * 1000 + 1000)) ] || fail "shutdown took ${took_ms} ms, over the grace"
  grep -q 'shutdown signal received' "$WORK/c-server.log" || fail "no shutdown log line"
  grep -q 'bank-server stopped' "$WORK/c-server.log" || fail "no clean stop"
  if grep -q 'grace period over' "$WORK/c-server.log"; then
    fail "calls were still in flight when the grace ran out"
  fi
  echo "the drain finished: every in-flight call completed before the transport stopped"
  wait_exit "$load" 90
  rc=$RC
  echo "stress-client exit $rc (the server is gone before the final reads: the verdict must be inconclusive, 3)"
  # Not 0: a run whose final state could not be read must never pass. Not 1:
  # a clean shutdown breaks no rule. Not 2: the run had started.
  [ "$rc" = 3 ] || fail "the load client ended with $rc, not 3 (inconclusive)"
  echo "status codes $(jq -c .status_codes "$WORK/c.json"); operations $(jq -c .operations "$WORK/c.json")"
  # What the service answers is OK (calls in flight at the signal finish) or
  # UNAVAILABLE (new calls during the drain; afterwards the port is closed,
  # which tonic also reports as UNAVAILABLE). A call the client sends at the
  # very moment the transport closes its connection (racing the final GOAWAY)
  # is never processed, but the tonic client reports it as CANCELLED
  # ("operation was canceled") or INTERNAL ("h2 protocol error": an h2 NO_ERROR
  # reset maps to INTERNAL): allowed, at most a few per connection. ABORTED
  # is the contract's answer to a retry (--duplicate-ratio) whose copy reached
  # the server first while it still waits for funds (--wait-for-funds).
  only_codes "$WORK/c.json" OK UNAVAILABLE CANCELLED INTERNAL ABORTED
  [ "$(code_count "$WORK/c.json" OK)" -gt 0 ] || fail "no op succeeded before the signal"
  [ "$(code_count "$WORK/c.json" UNAVAILABLE)" -gt 0 ] || fail "no call was refused with UNAVAILABLE"
  racing=$(($(code_count "$WORK/c.json" CANCELLED) + $(code_count "$WORK/c.json" INTERNAL)))
  echo "calls caught by the connection close (CANCELLED + INTERNAL): $racing (allowed: 4 per connection, 16)"
  [ "$racing" -le 16 ] || fail "$racing calls failed with CANCELLED/INTERNAL: more than a close race explains"
}

# ---------------------------------------------------------------------------
section_d() {
  step "(d) SIGTERM the moment the server says it listens"
  # Two busy loops make the window between "listening" and the signal handler
  # (if any) wide enough to hit; 20 tries.
  # (Subshells looping on builtins: killing one ends its loop; a bound of 30 s
  # all the same. Output to /dev/null so no pipe is held open.)
  local hogs=()
  for _ in 1 2; do
    (
      end=$((SECONDS + 30))
      while [ "$SECONDS" -lt "$end" ]; do :; done
    ) >/dev/null 2>&1 &
    PIDS+=("$!")
    hogs+=("$!")
  done
  for i in $(seq 1 20); do
    log="$WORK/d-server.log"
    : >"$log"
    "$SERVER_BIN" --listen 127.0.0.1:0 >"$log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 20000); do
      grep -q listening "$log" && break
      alive "$pid" || break
    done
    kill -TERM "$pid"
    wait_exit "$pid" 15
    rc=$RC
    [ "$rc" = 0 ] || fail "try $i: SIGTERM right after startup gave exit $rc"
  done
  kill -KILL "${hogs[@]}" 2>/dev/null || true
  for pid in "${hogs[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  echo "20 of 20 servers signalled right after startup exited 0"
}

# FAULTS_SECTIONS="a c" runs only some sections (all by default).
for section in ${FAULTS_SECTIONS:-a b c d}; do
  "section_$section"
done
step "all passed"
