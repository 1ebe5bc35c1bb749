#!/usr/bin/env bash
# End-to-end checks against a real bank-server process: a short release
# stress run whose exit code must be 0.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${BANK_CI_PORT:-50551}"
LOG="$(mktemp)"
./target/release/bank-server --listen "127.0.0.1:${PORT}" --processing-delay 1ms >"$LOG" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT

# Wait (bounded) until the server accepts connections.
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null; then break; fi
  sleep 0.1
done

printf '\n==== stress run against bank-server (release) ====\n'
./target/release/stress-client --target "http://127.0.0.1:${PORT}" \
  --connections 4 --streams 32 --duration 3s --warmup 1s --accounts 4 --quiet \
  --json target/ci-stress.json
echo "stress-client exit code 0; report:"
head -40 target/ci-stress.json

printf '\n==== SIGTERM: the server exits 0 ====\n'
kill -TERM "$SERVER"
wait "$SERVER"
echo "bank-server exited with $?"
trap - EXIT
tail -5 "$LOG"
