#!/usr/bin/env bash
# Siege, attack 3 of issue 18: another principal cannot make your retry
# apply twice. A release bank-server with --auth-tokens (alice and bob) and
# --max-request-ids 1000; alice withdraws 100 with request id `pay-rent`, bob
# sends 1,200 GetOperation of unseen ids on his own account (each fences an
# id, past the cap); alice's retry of `pay-rent` must be a replay and her
# balance stay 900 (before the fair share, the cap forgot her id and the
# retry was applied again: 900 -> 800). The client is Python (grpcio, stubs
# generated from proto/ at start: .ci/siege/request_ids_attack.py), from the
# venv .ci/interop.sh makes (made here the same way when missing).
# Bounded: the attack's calls have 10 s deadlines; the whole is ~10 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lib.sh

WORK="$(mktemp -d)"
FAIL_PREFIX="siege request-ids"
SERVER_BIN="${SIEGE_SERVER_BIN:-./target/release/bank-server}"
VENV="${BANK_CI_VENV:-target/ci-venv}"
SERVER=""
cleanup() {
  if [ -n "$SERVER" ]; then
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
need_tools "$SERVER_BIN"

need_venv

ALICE="alice-token-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
BOB="bob-token-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
printf 'alice %s\nbob %s\n' "$ALICE" "$BOB" >"$WORK/tokens"
chmod 600 "$WORK/tokens"
PORT="$(free_port)"
"$SERVER_BIN" --listen "127.0.0.1:$PORT" --auth-tokens "$WORK/tokens" --max-request-ids 1000 \
  --processing-delay 0s --shutdown-grace 1s >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 200); do
  alive "$SERVER" || fail "bank-server exited at start"
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.05
done
(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || fail "bank-server did not listen on $PORT within 10 s"

echo "siege request-ids: --max-request-ids 1000, bob fences 1,200 unseen ids, alice retries pay-rent"
timeout 60 "$VENV/bin/python" .ci/siege/request_ids_attack.py --target "127.0.0.1:$PORT" \
  --alice-token "$ALICE" --bob-token "$BOB" --fences 1200 >"$WORK/attack.log" 2>&1 ||
  { cat "$WORK/attack.log" >&2; fail "alice's request id was forgotten through bob's traffic (or the client failed)"; }
cat "$WORK/attack.log"
alive "$SERVER" || fail "bank-server died during the attack"
echo "siege request-ids: alice's retry was a replay; her balance stayed 900"
