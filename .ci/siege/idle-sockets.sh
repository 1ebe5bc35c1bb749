#!/usr/bin/env bash
# Siege, attack 1: idle sockets must not stop the server (issue 18).
#  (a) --max-connections 5, --handshake-timeout 2s: 5 TCP sockets that send
#      nothing; a victim's health check and deposit on a fresh connection,
#      opened during the attack, answer within 1 s of the timeout; the 5 are
#      closed at the timeout.
#      Without tokens and with --auth-tokens.
#  (b) the same on a TLS port: sockets that never send a ClientHello.
#  (c) default flags (tokens on): 1,000 idle sockets from 127.0.0.1 (256 held
#      by --max-connections-per-ip, the rest closed at once) and 2,000 from 8
#      other loopback addresses (250 each, all held until the 10 s handshake
#      timeout). A victim on 127.0.0.2 is served at once; one on 127.0.0.1
#      within 1 s once the timeout has passed; the server's RSS and fds stay
#      bounded while they are held and come back after; balances as expected.
#  (d) meanwhile, a slow-loris on the metrics listener: 16 sockets (its cap),
#      half of them with half a request; the 17th is closed at once, the 16
#      are cut at the 5 s header timeout, and /metrics answers after that.
# The handshake timeout is set through its env fallback (BANK_HANDSHAKE_TIMEOUT)
# so that this script also runs, and fails, against a server older than the flag.
# Uses SIEGE_SERVER_BIN (default ./target/release/bank-server); python3, openssl.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lib.sh

WORK="$(mktemp -d)"
FAIL_PREFIX="siege idle-sockets"
SERVER_BIN="${SIEGE_SERVER_BIN:-./target/release/bank-server}"
TOOL=.ci/siege/idle_sockets.py
need_tools "$SERVER_BIN"
command -v openssl >/dev/null || fail "openssl is needed for the TLS case"
# 3,000 idle sockets on the client side, as many accepts on the server's.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge 4096 ] || fail "need ulimit -n >= 4096 for 3,000 sockets (hard limit $(ulimit -Hn))"

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# The handshake timeout of (a) and (b), in seconds: long enough that the victim
# (a new python process) surely connects while the attack holds every permit.
TIMEOUT_S=2
TOKEN="siege-victim-$(openssl rand -hex 16)"
printf 'victim %s\n' "$TOKEN" >"$WORK/tokens"

# Starts a server named $1 with the rest as flags; sets PORT, MPORT and SERVER.
start_server() {
  local name=$1
  shift
  PORT="$(free_port)"
  MPORT="$(free_port)"
  "$SERVER_BIN" --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$MPORT" \
    --shutdown-grace 1s "$@" >"$WORK/$name.log" 2>&1 &
  SERVER=$!
  PIDS+=("$SERVER")
  await_log "$WORK/$name.log" "listening" 200 || fail "$name: the server did not start"
}

# Stops the server started last.
stop_server() {
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
}

# The victim: probe ARGS... (the calls), failing the script with $1 as the reason.
victim() {
  local what=$1
  shift
  VICTIM="$(python3 "$TOOL" probe --target "127.0.0.1:$PORT" "$@")" || fail "$what: $VICTIM"
  echo "  victim ($what): $VICTIM"
}

# Starts a holder of idle sockets (hold ARGS...) writing to $WORK/$1.out; waits until they are open.
holder() {
  local name=$1
  shift
  python3 "$TOOL" hold "$@" >"$WORK/$name.out" 2>"$WORK/$name.log" &
  PIDS+=("$!")
  HOLDER=$!
  await_log "$WORK/$name.out" "^ready" 600 || fail "$name: the idle sockets were not all connected within 30 s"
}

# The balance in the last answer of the last victim.
last_balance() { jq -r '.answers[-1].balance' <<<"$VICTIM"; }
# When holder $1's sockets were all open (epoch seconds).
ready_at() { awk '/^ready/ { print $2; exit }' "$WORK/$1.out"; }
# The JSON summary of holder $1 (waits for it to end), and key $2 of it.
summary() { tail -1 "$WORK/$1.out"; }
field() { summary "$1" | jq -r ".$2"; }

# (a)/(b): every permit held by a socket that says nothing; $1 names the case,
# the rest are extra server flags (and the victim's flags after --).
five_idle_sockets() {
  local name=$1
  shift
  local server_flags=() victim_flags=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do server_flags+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  victim_flags=("$@")
  BANK_HANDSHAKE_TIMEOUT=${TIMEOUT_S}s start_server "$name" --max-connections 5 "${server_flags[@]}"
  victim "$name: setup" "${victim_flags[@]}" --call open:victim:100
  holder "$name-idle" --target "127.0.0.1:$PORT" --count 5 --seconds 10
  local pid=$HOLDER
  # Connects while the attack holds every permit, and must be answered within
  # 1 s once the timeout has passed (counted from when the attack began).
  victim "$name: during the attack" "${victim_flags[@]}" --since "$(ready_at "$name-idle")" \
    --deadline $((TIMEOUT_S + 1)) --call health --call deposit:victim:1:d1
  awk -v t="$(jq -r .started_after_s <<<"$VICTIM")" -v max="$TIMEOUT_S" 'BEGIN { exit !(t < max) }' ||
    fail "$name: the victim started only after the timeout (machine too slow?): $VICTIM"
  wait "$pid" || true
  echo "  idle sockets: $(summary "$name-idle")"
  [ "$(field "$name-idle" closed)" = 5 ] || fail "$name: the idle sockets were not all closed"
  awk -v t="$(field "$name-idle" last_close_s)" -v max="$TIMEOUT_S" 'BEGIN { exit !(t >= max - 0.1 && t <= max + 1) }' ||
    fail "$name: idle sockets closed at $(field "$name-idle" last_close_s) s, not at the ${TIMEOUT_S} s timeout"
  victim "$name: after the timeout" "${victim_flags[@]}" --deadline 1 --call health --call deposit:victim:1:d2 --call balance:victim
  [ "$(last_balance)" = 102 ] || fail "$name: the victim's balance is not 100 + 2 deposits"
  stop_server
}

make_certs() {
  (
    cd "$WORK"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
      -keyout ca.key -out ca.pem -subj /CN=siege-ca
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout server.key -out server.csr -subj /CN=localhost
    printf 'subjectAltName=DNS:localhost\nbasicConstraints=critical,CA:FALSE\n' >ext.cnf
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
      -extfile ext.cnf -out server.pem
  ) >"$WORK/openssl.out" 2>&1 || fail "openssl could not make the test certificates"
}

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }
# The value of bank_connections_refused_total{listener=$2,reason=$3} in scrape $1.
refused() {
  awk -v s="bank_connections_refused_total{listener=\"$2\",reason=\"$3\"}" '$1 == s { print $2 }' "$1" | grep . || echo 0
}

echo "idle-sockets (a): 5 idle sockets vs --max-connections 5, plaintext, no tokens"
five_idle_sockets plain
echo "idle-sockets (a): the same with --auth-tokens"
five_idle_sockets plain-tokens --auth-tokens "$WORK/tokens" -- --token "$TOKEN"
echo "idle-sockets (b): 5 sockets that never send a ClientHello, TLS and tokens"
make_certs
five_idle_sockets tls --tls-cert "$WORK/server.pem" --tls-key "$WORK/server.key" \
  --auth-tokens "$WORK/tokens" -- --tls-ca "$WORK/ca.pem" --token "$TOKEN"

echo "idle-sockets (c): default flags, 3,000 idle sockets from 9 addresses; (d) metrics slow-loris"
start_server defaults --auth-tokens "$WORK/tokens"
victim "defaults: setup" --source 127.0.0.3 --token "$TOKEN" --call open:victim:1000
base_rss=$(rss_kb "$SERVER")
base_fds=$(fds "$SERVER")
holder one-address --target "127.0.0.1:$PORT" --count 1000 --seconds 14 --at-once-s 5
one=$HOLDER
others="$(seq -s, -f '127.0.0.%g' 10 17)"
holder many-addresses --target "127.0.0.1:$PORT" --count 2000 --sources "$others" --seconds 14 --at-once-s 5
many=$HOLDER
victim "defaults: from 127.0.0.2 during the attack" --source 127.0.0.2 --token "$TOKEN" \
  --deadline 1 --call health --call deposit:victim:1:d1
awk -v t="$(jq -r .started_at <<<"$VICTIM")" -v r="$(ready_at many-addresses)" 'BEGIN { exit !(t - r < 8) }' ||
  fail "defaults: the victim on 127.0.0.2 started too late (after 8 s of the 10 s timeout) to test anything"
held_rss=$(rss_kb "$SERVER")
held_fds=$(fds "$SERVER")
echo "  server while up to 2,256 idle sockets are held: RSS ${base_rss} -> ${held_rss} kB, fds ${base_fds} -> ${held_fds}"
[ "$held_fds" -le $((base_fds + 2256 + 64)) ] || fail "defaults: $held_fds fds open: more than the 2,256 held sockets"
[ $((held_rss - base_rss)) -le 32768 ] || fail "defaults: RSS grew by $((held_rss - base_rss)) kB (> 32 MiB) for 2,256 idle sockets"

# (d) on the same server's metrics listener, while (c) runs.
holder loris-silent --target "127.0.0.1:$MPORT" --count 8 --seconds 8
loris1=$HOLDER
holder loris-half --target "127.0.0.1:$MPORT" --count 8 --send 'GET /metrics HTTP/1.1\r\nHost: x\r\n' --seconds 8
loris2=$HOLDER
holder loris-over --target "127.0.0.1:$MPORT" --count 1 --seconds 2 --at-once-s 1
wait "$!" || true
[ "$(field loris-over closed_at_once)" = 1 ] || fail "metrics: the 17th connection was not closed at once: $(summary loris-over)"
wait "$loris1" "$loris2" || true
for h in loris-silent loris-half; do
  echo "  metrics slow-loris $h: $(summary "$h")"
  [ "$(field "$h" closed)" = 8 ] || fail "metrics: $h: not all cut"
  awk -v t="$(field "$h" last_close_s)" 'BEGIN { exit !(t <= 6.5) }' || fail "metrics: $h cut at $(field "$h" last_close_s) s, not at the 5 s header timeout"
done
python3 "$TOOL" scrape --target "127.0.0.1:$MPORT" --deadline 1 >"$WORK/scrape-loris.txt" ||
  fail "metrics: /metrics did not answer within 1 s after the slow-loris was cut"

wait "$one" "$many" || true
echo "  from 127.0.0.1: $(summary one-address)"
echo "  from 8 other addresses: $(summary many-addresses)"
[ "$(field one-address closed_at_once)" = 744 ] || fail "defaults: not 1,000 - 256 closed at once by --max-connections-per-ip"
[ "$(field one-address closed)" = 1000 ] || fail "defaults: the 256 held from 127.0.0.1 were not closed at the timeout"
[ "$(field many-addresses closed_at_once)" = 0 ] || fail "defaults: sockets under the per-IP cap were closed before the timeout"
[ "$(field many-addresses closed)" = 2000 ] || fail "defaults: the idle sockets were not all closed at the timeout"
awk -v t="$(field many-addresses last_close_s)" 'BEGIN { exit !(t <= 13) }' || fail "defaults: idle sockets closed only at $(field many-addresses last_close_s) s"
victim "defaults: from 127.0.0.1 after the timeout" --token "$TOKEN" --deadline 1 \
  --call health --call deposit:victim:1:d2 --call balance:victim
[ "$(last_balance)" = 1002 ] || fail "defaults: the victim's balance is not 1000 + 2 deposits"
after_fds=$(fds "$SERVER")
echo "  server after the timeout: fds $after_fds, RSS $(rss_kb "$SERVER") kB"
[ "$after_fds" -le $((base_fds + 16)) ] || fail "defaults: $after_fds fds still open after the timeout (base $base_fds)"
python3 "$TOOL" scrape --target "127.0.0.1:$MPORT" --deadline 1 >"$WORK/scrape.txt" || fail "metrics: no scrape"
for series in "grpc per_ip 744" "grpc handshake_timeout 2256"; do
  set -- $series
  [ "$(refused "$WORK/scrape.txt" "$1" "$2")" = "$3" ] ||
    fail "metrics: bank_connections_refused_total{listener=$1,reason=$2} is $(refused "$WORK/scrape.txt" "$1" "$2"), not $3"
done
[ "$(refused "$WORK/scrape.txt" metrics header_timeout)" -ge 16 ] || fail "metrics: the slow-loris cuts are not counted"
[ "$(refused "$WORK/scrape.txt" metrics max_connections)" -ge 1 ] || fail "metrics: the refusal past the cap is not counted"
stop_server
echo "idle-sockets: idle and slow sockets were cut; every victim was served in time"
