#!/usr/bin/env bash
# Three load processes on shared accounts, one verdict, on one machine:
# `stress-client setup` opens the accounts, three `--attach` processes (two
# unary, one over WithdrawStream) drive them at once, each writing its
# history, and `stress-client check --target` judges them together. On
# several machines run the same commands there (see examples/k8s/), gather
# the histories in one place and pass --max-clock-skew (docs/history.md).
#
# TARGET=http://host:port drives that server; without it a bank-server is
# started here on a free port (SERVER_FLAGS are passed to it, e.g.
# "--inject-bug lost-update") and stopped at the end. OUT (default: a temp
# dir) keeps the histories and check.json. STRESS_BIN and SERVER_BIN name
# the binaries (default target/release/). Exits with check's code:
# 0 passed, 1 failed, 3 inconclusive, 2 unreadable or usage.
set -euo pipefail
STRESS_BIN="${STRESS_BIN:-./target/release/stress-client}"
SERVER_BIN="${SERVER_BIN:-./target/release/bank-server}"
OUT="${OUT:-$(mktemp -d)}"
RUN_ID="${RUN_ID:-example$$}"
ACCOUNTS="${ACCOUNTS:-3}"
BALANCE="${BALANCE:-500}"
LOAD="${LOAD:---duration 2s --warmup 0s --streams 8 --transfer-ratio 0.3 --read-ratio 0.1}"
SERVER_PID=""
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; true' EXIT

if [ -z "${TARGET:-}" ]; then
  # shellcheck disable=SC2086
  "$SERVER_BIN" --listen 127.0.0.1:0 --processing-delay 1ms ${SERVER_FLAGS:-} >"$OUT/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 200); do
    addr="$(grep -o 'listening addr=127\.0\.0\.1:[0-9]*' "$OUT/server.log" 2>/dev/null | head -1 || true)"
    [ -n "$addr" ] && break
    sleep 0.05
  done
  [ -n "${addr:-}" ] || { echo "bank-server did not start: $(tail -3 "$OUT/server.log")" >&2; exit 2; }
  TARGET="http://127.0.0.1:${addr##*:}"
fi

"$STRESS_BIN" setup --target "$TARGET" --run-id "$RUN_ID" --accounts "$ACCOUNTS" \
  --initial-balance "$BALANCE" --history "$OUT/setup.jsonl"
pids=()
for k in 0 1 2; do
  mode=unary; [ "$k" = 1 ] && mode=stream
  # shellcheck disable=SC2086
  "$STRESS_BIN" --target "$TARGET" --attach "$RUN_ID" --process-id "$k" --accounts "$ACCOUNTS" \
    --initial-balance "$BALANCE" --mode "$mode" $LOAD --quiet \
    --history "$OUT/h$k.jsonl.zst" --json "$OUT/r$k.json" &
  pids+=($!)
done
for pid in "${pids[@]}"; do
  code=0; wait "$pid" || code=$?
  # An attached process alone cannot decide: 3 is its normal exit.
  [ "$code" = 3 ] || { echo "a load process exited $code (expected 3)" >&2; exit 2; }
done
code=0
"$STRESS_BIN" check --target "$TARGET" "$OUT/setup.jsonl" "$OUT"/h{0,1,2}.jsonl.zst \
  --json "$OUT/check.json" || code=$?
echo "histories and check.json in $OUT"
exit "$code"
