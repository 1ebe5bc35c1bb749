#!/usr/bin/env bash
# End-to-end checks against a real bank-server process: a short release
# stress run whose exit code must be 0, then a scrape of /metrics whose
# bank_operations_total must match the client's counts (duplicates sent by
# the client are replays: the server counts each operation once).
set -euo pipefail
cd "$(dirname "$0")/.."

# Fixed ports below Linux's ephemeral range (32768-60999): there, a client's outbound
# connection from the tests before may hold the port (50552 did, once: "Address already in use").
PORT="${BANK_CI_PORT:-20551}"
METRICS_PORT="${BANK_CI_METRICS_PORT:-20552}"
LOG="$(mktemp)"
./target/release/bank-server --listen "127.0.0.1:${PORT}" --processing-delay 1ms \
  --metrics-listen "127.0.0.1:${METRICS_PORT}" >"$LOG" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT

# Wait (bounded) until the server accepts connections.
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null; then break; fi
  sleep 0.1
done
kill -0 "$SERVER" 2>/dev/null || { echo "!!!! bank-server did not start:" >&2; cat "$LOG" >&2; exit 1; }

printf '\n==== stress run against bank-server (release) ====\n'
./target/release/stress-client --target "http://127.0.0.1:${PORT}" \
  --connections 4 --streams 32 --duration 3s --warmup 1s --accounts 4 --quiet \
  --read-ratio 0.1 --duplicate-ratio 0.05 --json target/ci-stress.json
echo "stress-client exit code 0; report:"
head -40 target/ci-stress.json

printf '\n==== /metrics after the run: the server counted what the client saw ====\n'
curl -fsS "http://127.0.0.1:${METRICS_PORT}/metrics" >target/ci-metrics.txt
grep -E '^bank_operations_total|^bank_open_accounts|^bank_remembered_request_ids|^process_resident_memory_bytes' target/ci-metrics.txt
server_count() { # the sum of bank_operations_total{outcome="$1"} over methods
  awk -v o="outcome=\"$1\"" '/^bank_operations_total/ && index($0, o) { n += $NF } END { printf "%d", n }' target/ci-metrics.txt
}
errors="$(jq '.operations.errors' target/ci-stress.json)"
for outcome in approved insufficient_funds; do
  client="$(jq ".operations.${outcome}" target/ci-stress.json)"
  server="$(server_count "$outcome")"
  echo "${outcome}: client ${client}, server ${server} (client errors: ${errors})"
  # An op whose call failed may have been applied: the server may count up to `errors` more.
  if [ "$server" -lt "$client" ] || [ "$server" -gt $((client + errors)) ]; then
    echo "!!!! metrics disagree with the client on ${outcome}" >&2
    exit 1
  fi
done

printf '\n==== SIGTERM: the server exits 0 ====\n'
kill -TERM "$SERVER"
wait "$SERVER"
echo "bank-server exited with $?"
trap - EXIT
tail -5 "$LOG"
