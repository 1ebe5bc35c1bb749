#!/usr/bin/env bash
# bench/run.sh — the performance cases P1..P15 of bank, measured in one run
# (P10-P12 need PostgreSQL: bench/pg.sh).
#
# Builds the release binaries, installs h2load (and jq) if missing, starts a
# fresh server on loopback for every case (killed on exit), runs the load,
# prints `case | measured | target | ratio | pass` and writes
# bench/results/latest.json. Server and load generator share this machine's
# cores: read every number with that in mind.
#
# Environment:
#   BENCH_DURATION  measured seconds per load run (default 5)
#   BENCH_WARMUP    warmup seconds per load run (default 1)
#   BENCH_CASES     which cases, e.g. "P1 P4" (default: all; P3T, the
#                   stress-client on its tonic stack, only when named)
#   BENCH_REPS      runs of each throughput measurement, each on a fresh
#                   server; the best is kept (default 1). Other load on the
#                   machine only ever lowers a throughput, so on a shared
#                   machine best-of-3 is the fairer number.
#   BENCH_OUT       JSON report path (default bench/results/latest.json)
#   BENCH_PORT      first loopback port to use (default 20700)
#   BENCH_SMOKE     1: exit 0 even when a target is missed; only broken
#                   machinery (a tool failing, a check failing, a missing
#                   number) fails the script. Used by bench/smoke.sh.
#   BENCH_NO_BUILD  1: use the binaries in target/release as they are
#   BENCH_RUNS      repeated runs of P4 (median) and P6 (every one must
#                   pass; median and worst reported) (default 5)
#
# Exit code: 0 all cases ran and met their targets (or BENCH_SMOKE=1);
# 1 a target was missed; 2 the machinery broke.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${BENCH_DURATION:-5}"
WARMUP="${BENCH_WARMUP:-1}"
# The PostgreSQL cases (P10-P12, bench/pg.sh) join the default list only
# where PostgreSQL is installed.
source bench/pg.sh
CASES="${BENCH_CASES:-P1 P2 P3 P4 P5 P6 P7 P8 P9 P13 P15 PW M1 P14$(pg_available && echo " $PG_CASES")}"
OUT="${BENCH_OUT:-bench/results/latest.json}"
# Servers listen on PORT, PORT+1, ...: below Linux's ephemeral range (32768-60999),
# where a client's own outbound connections could hold the next one and the
# server's bind fail with "Address already in use".
PORT="${BENCH_PORT:-20700}"
SMOKE="${BENCH_SMOKE:-0}"
REPS="${BENCH_REPS:-1}"
RUNS="${BENCH_RUNS:-5}"
BIN=target/release
# Load shape of the zero-delay cases (P3, P4, P5): connections × streams.
CONNS=4
STREAMS=64
BIG_BALANCE=1000000000000000

TMP="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

die() {
  echo "bench: $*" >&2
  exit 2
}
say() { echo "bench: $*" >&2; }

# ---------------------------------------------------------------- setup

install_tools() {
  local missing=()
  command -v h2load >/dev/null || missing+=(nghttp2-client)
  command -v jq >/dev/null || missing+=(jq)
  command -v openssl >/dev/null || missing+=(openssl)
  [ ${#missing[@]} -eq 0 ] && return
  say "installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq "${missing[@]}" >/dev/null ||
    die "cannot install ${missing[*]}; install them and retry"
}

build() {
  [ "${BENCH_NO_BUILD:-0}" = 1 ] && return
  say "building release binaries"
  cargo build --release -q -p bank-server -p stress-client -p bank-checker -p bank-bench --bins ||
    die "release build failed"
}

# ---------------------------------------------------------------- processes

# P14: `stress-client check` merging 3 histories × P14_OPS ops (a correct
# synthetic run with transfers, reads, duplicates, split over 3 processes by
# history-bench), parsing included: wall time ≤ 5 s, peak RSS ≤ 200 B per op.
# The detail says how much of the time is parsing (check's timing_s).
P14_OPS="${BENCH_P14_OPS:-1000000}"
case_P14() {
  local dir="$TMP/p14" ops secs kb
  "$BIN/history-bench" "$dir" --ops-per-process "$P14_OPS" --processes 3 >"$TMP/p14.gen" || die "P14: history-bench failed"
  ops=$((P14_OPS * 3))
  /usr/bin/time -f '%e %M' -o "$TMP/p14.time" "$BIN/stress-client" check "$dir"/h*.jsonl --json "$TMP/p14.json" \
    >"$TMP/p14.out" || die "P14: check did not pass: $(tail -3 "$TMP/p14.out")"
  read -r secs kb <"$TMP/p14.time"
  local detail
  detail=$(jq -c --argjson ops "$ops" --argjson kb "$kb" --argjson s "$secs" \
    '{ops: $ops, wall_s: $s, peak_rss_bytes: ($kb * 1024), bytes_per_op: ($kb * 1024 / $ops), timing_s: .timing_s, cpu_s: .cpu_s}' "$TMP/p14.json")
  record P14 "merged check of 3 histories x $P14_OPS ops (parsing included)" "$secs" "s" 5 "s target" le 1 "$detail"
  record P14M "memory of that check, peak RSS per op" "$(jq .bytes_per_op <<<"$detail")" "B/op" 200 "B/op target" le 1 "$detail"
}

next_port() { PORT=$((PORT + 1)); }

# Waits until PORT accepts connections, while process PID lives.
wait_port() {
  local port=$1 pid=$2
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}

# start LABEL CMD...: runs a server on $PORT in the background; sets SERVER.
start() {
  local label=$1
  shift
  "$@" >"$TMP/$label.log" 2>&1 &
  SERVER=$!
  PIDS+=("$SERVER")
  wait_port "$PORT" "$SERVER" || die "$label did not start: $(tail -5 "$TMP/$label.log")"
}

stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

bank_server() { # bank_server LABEL DELAY [FLAGS...]
  local label=$1 delay=$2
  shift 2
  next_port
  start "$label" "$BIN/bank-server" --listen "127.0.0.1:$PORT" --processing-delay "$delay" "$@"
}

HZ="$(getconf CLK_TCK)"
CORES="$(nproc)"

# CPU ticks (user + system) the processes named have used so far.
ticks_of() {
  local pid total=0 t
  for pid in "$@"; do
    t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  echo "$total"
}

# CPU ticks the whole machine has been busy (user, nice, system, irq, softirq, steal).
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }

# measure LABEL CMD...: runs a load generator in the foreground and writes
# to $TMP/LABEL.cpu the CPU seconds of the client, of the server (and of the
# process $EXTRA, part of the case, if set), of everything else on the
# machine during the run (noise), and the wall time.
EXTRA=""
measure() {
  local label=$1
  shift
  local before after busy0 busy1 t0 t1 rc=0
  before=$(ticks_of "$SERVER" $EXTRA)
  busy0=$(busy)
  t0=$(date +%s.%N)
  local TIMEFORMAT='%U %S'
  { time "$@" >"$TMP/$label.out" 2>"$TMP/$label.err" || rc=$?; } 2>"$TMP/$label.time"
  t1=$(date +%s.%N)
  busy1=$(busy)
  after=$(ticks_of "$SERVER" $EXTRA)
  [ "$rc" -eq 0 ] || die "$label: $1 exited $rc: $(tail -5 "$TMP/$label.err" "$TMP/$label.out")"
  awk -v hz="$HZ" -v b="$before" -v a="$after" -v m="$busy1" -v m0="$busy0" -v t="$t1" -v t0="$t0" \
    '{ c = $1 + $2; s = (a - b) / hz; o = (m - m0) / hz - c - s; if (o < 0) o = 0
       printf "%.2f %.2f %.2f %.2f\n", c, s, o, t - t0 }' "$TMP/$label.time" >"$TMP/$label.cpu"
}

# stress LABEL [FLAGS...]: a stress-client run against $PORT; its report is
# $TMP/LABEL.json, and it must end with a passed consistency check. The
# extra reads and retries are off: the cases measure money ops, and h2load,
# which some of them are compared with, sends nothing else either.
# TARGET_SCHEME and TARGET_HOST: how it reaches the server (P13: https, localhost).
TARGET_SCHEME=http
TARGET_HOST=127.0.0.1
stress() {
  local label=$1
  shift
  measure "$label" "$BIN/stress-client" --target "$TARGET_SCHEME://$TARGET_HOST:$PORT" \
    --duration "${DURATION}s" --warmup "${WARMUP}s" --read-ratio 0 --duplicate-ratio 0 \
    --quiet --json "$TMP/$label.json" "$@"
  [ "$(jq .consistency.passed "$TMP/$label.json")" = true ] || die "$label: consistency check failed"
  ops_stress "$label"
}

# h2 LABEL [bench-prep flags]: h2load's unary Withdraw load against $PORT
# (bank-server or bare-server), CONNS connections × STREAMS/CONNS streams;
# writes its req/s to $TMP/LABEL.rate.
h2() {
  local label=$1 frame="$TMP/withdraw.frame"
  "$BIN/bench-prep" --target "http://127.0.0.1:$PORT" --account bench-hot \
    --balance "$BIG_BALANCE" --amount 1 --frame "$frame" "${@:2}" >/dev/null ||
    die "$label: bench-prep failed"
  measure "$label" h2load -d "$frame" -H 'content-type: application/grpc' -H 'te: trailers' \
    -c "$CONNS" -m $((STREAMS / CONNS)) -D "$DURATION" --warm-up-time "$WARMUP" \
    "http://127.0.0.1:$PORT/bank.v1.Bank/Withdraw"
  local out="$TMP/$label.out"
  grep -q ' 0 failed, 0 errored, 0 timeout' "$out" || die "$label: h2load saw failures: $(grep requests: "$out")"
  awk '/^finished in/ { gsub(",", "", $4); print $4 }' "$out" >"$TMP/$label.rate"
}

# keep_best LABEL REP: makes run LABEL.REP the kept LABEL if its throughput
# ($TMP/LABEL.REP.rate) beats the kept one's.
keep_best() {
  local label=$1 rep=$2 f
  if [ ! -f "$TMP/$label.rate" ] ||
    awk -v n="$(cat "$TMP/$label.$rep.rate")" -v o="$(cat "$TMP/$label.rate")" 'BEGIN { exit !(n > o) }'; then
    for f in "$TMP/$label.$rep".*; do cp "$f" "$TMP/$label.${f##*."$rep".}"; done
  fi
}

# Extra bank-server flags for stress_best (P8, P9); DATA is the data dir
# they may name, emptied before every server start.
SERVER_FLAGS=()
DATA="$TMP/data"

# stress_best LABEL DELAY [stress-client flags]: best of REPS stress-client
# runs, each against a fresh bank-server with DELAY (and SERVER_FLAGS); kept
# as $TMP/LABEL.*, the server's log as $TMP/LABEL.REP-server.log.
stress_best() {
  local label=$1 delay=$2 rep
  shift 2
  for rep in $(seq 1 "$REPS"); do
    rm -rf "$DATA"
    bank_server "$label.$rep-server" "$delay" "${SERVER_FLAGS[@]}"
    stress "$label.$rep" "$@"
    stop "$SERVER"
    jq .throughput_ops_per_s "$TMP/$label.$rep.json" >"$TMP/$label.$rep.rate"
    syncs_of "$TMP/$label.$rep-server.log" >"$TMP/$label.$rep.syncs"
    keep_best "$label" "$rep"
  done
}

# The journal's syncs and records, as the durable server logs them at exit
# ({} for a server in memory).
syncs_of() {
  local line
  line=$(grep -o 'syncs=[0-9]* records=[0-9]*' "$1" | tail -1 || true)
  [ -n "$line" ] || { echo '{}'; return; }
  set -- ${line//[a-z=]/ }
  jq -cn --argjson s "$1" --argjson r "$2" '{syncs: $s, records: $r, records_per_sync: ($r / ([$s, 1] | max))}'
}

# The account's sequence after an h2load run: how many withdrawals the bank
# really applied (h2load cannot read grpc-status, which is in the trailers).
applied() {
  "$BIN/bench-prep" --target "http://127.0.0.1:$PORT" --account bench-hot --show | jq .sequence
}

h2_done() { awk '/^requests:/ { print $8 }' "$TMP/$1.out"; }

# Ops a run made, for CPU per op ($TMP/LABEL.ops): a stress-client run's
# total (warmup included, as its CPU is); for h2load the withdrawals the bank
# applied (warmup included) or, against the bare server, the requests done
# in the measured window scaled up to the whole run.
ops_stress() { jq .operations.total "$TMP/$1.json" >"$TMP/$1.ops"; }
ops_h2_bare() {
  awk -v d="$(h2_done "$1")" -v w="$WARMUP" -v m="$DURATION" 'BEGIN { printf "%d\n", d * (w + m) / m }' >"$TMP/$1.ops"
}

# ---------------------------------------------------------------- results

RESULTS="$TMP/results.jsonl"
: >"$RESULTS"

# record CASE NAME NUM NUM_LABEL DEN DEN_LABEL CMP TARGET DETAIL_JSON [RUN_LABEL...]
# ratio = NUM / DEN; passes when ratio CMP (ge|le) TARGET. The runs named
# add their CPU use; `noise` is the largest share of the machine that other
# processes took during any of them (a busy machine makes every number low).
record() {
  local case=$1 name=$2 num=$3 numl=$4 den=$5 denl=$6 cmp=$7 target=$8 detail=$9
  shift 9
  [ -n "$num" ] && [ -n "$den" ] || die "$case: a measurement is missing"
  jq -cn --arg case "$case" --arg name "$name" --argjson num "$num" --arg numl "$numl" \
    --argjson den "$den" --arg denl "$denl" --arg cmp "$cmp" --argjson target "$target" \
    --argjson detail "$detail" --argjson cpu "$(cpu_json "$@")" '
      ($num / $den) as $ratio
      | { case: $case, name: $name, measured: $num, measured_label: $numl,
          reference: $den, reference_label: $denl, ratio: $ratio,
          target: { cmp: $cmp, value: $target },
          pass: (if $cmp == "ge" then $ratio >= $target else $ratio <= $target end),
          noise: ([$cpu[] | .others_share] | max // 0),
          cpu: $cpu, detail: $detail }' >>"$RESULTS" || die "$case: bad numbers ($num / $den)"
}

# cpu_json LABEL...: {"LABEL": {client_cpu_s, server_cpu_s, others_cpu_s, wall_s, others_share,
# and where the run's ops are known: ops, client_us_per_op, server_us_per_op}, …}
cpu_json() {
  local label json="{}" ops
  for label in "$@"; do
    ops=null
    [ -f "$TMP/$label.ops" ] && ops=$(cat "$TMP/$label.ops")
    json=$(read -r c s o w <"$TMP/$label.cpu" && jq -c --arg l "$label" --argjson c "$c" --argjson s "$s" \
      --argjson o "$o" --argjson w "$w" --argjson n "$CORES" --argjson ops "$ops" \
      '. + {($l): ({client_cpu_s: $c, server_cpu_s: $s, others_cpu_s: $o, wall_s: $w,
                   others_share: (if $w > 0 then $o / ($w * $n) else 0 end)}
                  + (if ($ops // 0) > 0 then {ops: $ops, client_us_per_op: ($c * 1e6 / $ops),
                                              server_us_per_op: ($s * 1e6 / $ops)} else {} end))}' <<<"$json")
  done
  echo "$json"
}

throughput() { jq .throughput_ops_per_s "$TMP/$1.json"; }
p99() { jq .latency_us.p99 "$TMP/$1.json"; }

# ---------------------------------------------------------------- shared measurements

ZERO_DELAY_LOAD=(--connections "$CONNS" --streams "$STREAMS" --accounts 1 --deposit-ratio 0
  --transfer-ratio 0 --amount 1 --initial-balance "$BIG_BALANCE")

rate() { cat "$TMP/$1.rate"; }

h2_bank() {
  [ -f "$TMP/h2-bank.rate" ] && return
  say "h2load -> bank-server (delay 0)"
  local rep seq done
  for rep in $(seq 1 "$REPS"); do
    bank_server h2-bank-server 0s
    h2 "h2-bank.$rep" --open
    seq=$(applied)
    done=$(h2_done "h2-bank.$rep")
    [ "$seq" -ge "$done" ] || die "bank-server applied $seq withdrawals, h2load counted $done done"
    echo "$seq" >"$TMP/h2-bank.$rep.ops"
    stop "$SERVER"
    keep_best h2-bank "$rep"
  done
}

stress_unary() {
  [ -f "$TMP/unary.rate" ] && return
  say "stress-client --mode unary -> bank-server (delay 0)"
  stress_best unary 0s --mode unary "${ZERO_DELAY_LOAD[@]}"
}

# ---------------------------------------------------------------- cases

case_P1() {
  say "P1: one hot account, delay 2ms, 64 streams"
  stress_best p1 2ms --connections 4 --streams 64 --accounts 1
  record P1 "serial limit (1 account, delay 2ms, 64 streams)" "$(throughput p1)" "ops/s" 500 \
    "1 / 2ms" ge 0.98 "$(jq -c '{latency_us}' "$TMP/p1.json")" p1
}

case_P2() {
  say "P2: 256 accounts, delay 10ms, 1024 streams"
  stress_best p2 10ms --connections 4 --streams 1024 --accounts 256 --transfer-ratio 0
  record P2 "parallel accounts (256 accounts, delay 10ms, 1024 streams, no transfers)" "$(throughput p2)" \
    "ops/s" 25600 "256 / 10ms" ge 0.90 "$(jq -c '{latency_us}' "$TMP/p2.json")" p2
}

case_P3() {
  h2_bank
  stress_unary
  record P3 "load generator (unary Withdraw, delay 0, ${CONNS}x$((STREAMS / CONNS)) streams)" \
    "$(rate unary)" "stress-client ops/s" "$(rate h2-bank)" "h2load req/s" ge 0.75 "{}" unary h2-bank
}

# P3 with the stress-client on tonic's client stack (--client-stack tonic),
# for comparison with the fast path; run only when named.
case_P3T() {
  h2_bank
  say "stress-client --mode unary --client-stack tonic -> bank-server (delay 0)"
  stress_best unary-tonic 0s --mode unary --client-stack tonic "${ZERO_DELAY_LOAD[@]}"
  record P3T "load generator on tonic (unary Withdraw, delay 0, ${CONNS}x$((STREAMS / CONNS)) streams)" \
    "$(rate unary-tonic)" "stress-client ops/s" "$(rate h2-bank)" "h2load req/s" ge 0.75 "{}" unary-tonic h2-bank
}

# The lab certificate of P13, made the usual way: `openssl req -x509`
# (self-signed, CA:TRUE), for localhost; the client pins it with --tls-ca.
tls_cert() {
  [ -f "$TMP/tls.pem" ] && return
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout "$TMP/tls.key" -out "$TMP/tls.pem" -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost" >/dev/null 2>&1 || die "openssl cannot make a certificate"
}

# P13: P3's stress-client load over TLS (fast path, rustls) ÷ the same load
# in plaintext, each on a fresh bank-server of the same build.
case_P13() {
  stress_unary
  tls_cert
  say "stress-client --mode unary over TLS -> bank-server --tls-cert (delay 0)"
  SERVER_FLAGS=(--tls-cert "$TMP/tls.pem" --tls-key "$TMP/tls.key")
  TARGET_SCHEME=https
  TARGET_HOST=localhost
  stress_best unary-tls 0s --mode unary --tls-ca "$TMP/tls.pem" "${ZERO_DELAY_LOAD[@]}"
  SERVER_FLAGS=()
  TARGET_SCHEME=http
  TARGET_HOST=127.0.0.1
  record P13 "TLS (unary Withdraw, delay 0, ${CONNS}x$((STREAMS / CONNS)) streams) vs plaintext" \
    "$(rate unary-tls)" "stress-client TLS ops/s" "$(rate unary)" "stress-client plaintext ops/s" ge 0.8 "{}" \
    unary-tls unary
}

# median_of FILE: the median of the numbers in FILE (one per line).
median_of() { sort -g "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# P4 as RUNS pairs, each pair side by side (bank-server, then the bare
# server, both fresh); the pair with the median ratio is the one recorded.
case_P4() {
  say "P4: $RUNS pairs of h2load runs, bank-server then bare-server"
  local i seq pairs="$TMP/p4.pairs"
  : >"$pairs"
  for i in $(seq 1 "$RUNS"); do
    bank_server "p4-bank.$i-server" 0s
    h2 "p4-bank.$i" --open
    seq=$(applied)
    echo "$seq" >"$TMP/p4-bank.$i.ops"
    stop "$SERVER"
    next_port
    start "p4-bare.$i-server" "$BIN/bare-server" --listen "127.0.0.1:$PORT"
    h2 "p4-bare.$i"
    ops_h2_bare "p4-bare.$i"
    stop "$SERVER"
    echo "$i $(rate "p4-bank.$i") $(rate "p4-bare.$i")" >>"$pairs"
  done
  local ratios="$TMP/p4.ratios" median pick detail
  awk '{ print $2 / $3 }' "$pairs" >"$ratios"
  median=$(median_of "$ratios")
  # The pair whose ratio is nearest the median (the median itself when RUNS is odd).
  pick=$(awk -v m="$median" '{ d = $2 / $3 - m; if (d < 0) d = -d; if (NR == 1 || d < best) { best = d; i = $1 } } END { print i }' "$pairs")
  detail=$(echo "[$(awk '{ printf "%s{\"bank\": %s, \"bare\": %s, \"ratio\": %s}", (NR > 1 ? "," : ""), $2, $3, $2 / $3 }' "$pairs")]" |
    jq -c --argjson m "$median" '{median_ratio: $m, lowest_ratio: (map(.ratio) | min), pairs: .}')
  record P4 "server overhead (h2load unary Withdraw, delay 0; median of $RUNS pairs)" "$(rate "p4-bank.$pick")" \
    "bank-server req/s" "$(rate "p4-bare.$pick")" "bare-server req/s" ge 0.90 "$detail" "p4-bank.$pick" "p4-bare.$pick"
}

case_P5() {
  h2_bank
  say "stress-client --mode stream -> bank-server (delay 0)"
  stress_best stream 0s --mode stream "${ZERO_DELAY_LOAD[@]}"
  record P5 "streaming (delay 0, $STREAMS streams) vs h2load unary" "$(rate stream)" "stream msgs/s" \
    "$(rate h2-bank)" "h2load unary req/s" ge 1.5 "{}" stream h2-bank
}

# One P6 run (number $1): the cold account's p99 alone, then under the hot
# flood, on a fresh server; writes $TMP/p6.$1.ratio.
p6_once() {
  local i=$1
  bank_server "p6.$i-server" 1ms
  local cold=(--connections 1 --streams 1 --accounts 1 --mode unary)
  stress "p6-alone.$i" "${cold[@]}"
  local flood_s=$((WARMUP + DURATION + 6))
  "$BIN/stress-client" --target "http://127.0.0.1:$PORT" --connections 4 --streams 2000 \
    --accounts 1 --mode unary --deposit-ratio 0.5 --read-ratio 0 --duplicate-ratio 0 \
    --duration "${flood_s}s" --warmup 0s \
    --timeout 60s --quiet --json "$TMP/p6-flood.$i.json" >"$TMP/p6-flood.$i.log" 2>&1 &
  local flood=$!
  PIDS+=("$flood")
  sleep 3 # 2000 workers connect and queue on the hot account
  kill -0 "$flood" 2>/dev/null || die "the flood client died: $(tail -5 "$TMP/p6-flood.$i.log")"
  EXTRA=$flood
  stress "p6-flooded.$i" "${cold[@]}"
  EXTRA=""
  wait "$flood" || die "the flood client exited $?: $(tail -5 "$TMP/p6-flood.$i.log")"
  stop "$SERVER"
  awk -v f="$(p99 "p6-flooded.$i")" -v a="$(p99 "p6-alone.$i")" 'BEGIN { print f / a }' >"$TMP/p6.$i.ratio"
}

# P6 RUNS times; every run must pass, so the worst run is recorded (with
# the median in the detail).
case_P6() {
  say "P6: $RUNS runs of: cold account alone, then while 2000 ops queue on a hot account (delay 1ms)"
  local i
  for i in $(seq 1 "$RUNS"); do p6_once "$i"; done
  local ratios="$TMP/p6.ratios" worst runs detail
  for i in $(seq 1 "$RUNS"); do echo "$i $(cat "$TMP/p6.$i.ratio")"; done >"$ratios"
  worst=$(sort -k2 -g "$ratios" | tail -1 | cut -d' ' -f1)
  runs=$(for i in $(seq 1 "$RUNS"); do
    jq -cn --slurpfile a "$TMP/p6-alone.$i.json" --slurpfile f "$TMP/p6-flooded.$i.json" \
      --slurpfile h "$TMP/p6-flood.$i.json" '{alone_p99_us: $a[0].latency_us.p99,
        flooded_p99_us: $f[0].latency_us.p99, ratio: ($f[0].latency_us.p99 / $a[0].latency_us.p99),
        flood_ops_per_s: $h[0].throughput_ops_per_s}'
  done | jq -cs .)
  detail=$(jq -cn --argjson r "$runs" --argjson m "$(cut -d' ' -f2 "$ratios" >"$ratios.v" && median_of "$ratios.v")" \
    --slurpfile a "$TMP/p6-alone.$worst.json" --slurpfile f "$TMP/p6-flooded.$worst.json" \
    '{median_ratio: $m, worst_ratio: ($r | map(.ratio) | max), runs: $r,
      alone_us: $a[0].latency_us, flooded_us: $f[0].latency_us}')
  record P6 "isolation (cold p99, 2000 ops queued on a hot account, delay 1ms; worst of $RUNS)" \
    "$(p99 "p6-flooded.$worst")" "flooded p99 us" "$(p99 "p6-alone.$worst")" "alone p99 us" le 2.0 "$detail" \
    "p6-alone.$worst" "p6-flooded.$worst"
}

case_P7() {
  say "P7: checker on 1M ops (transfers, reads, duplicate sends), then with 1 % unknown outcomes"
  "$BIN/checker-bench" 1000000 8 0 >"$TMP/p7.json" || die "checker-bench failed"
  record P7a "checker time (1M ops)" "$(jq .check_s "$TMP/p7.json")" "check s" 1 "1 s" le 1.0 \
    "$(cat "$TMP/p7.json")"
  record P7b "checker memory, records included (1M ops)" "$(jq .bytes_per_op "$TMP/p7.json")" "bytes/op" 96 "96 B" le 1.0 \
    "$(cat "$TMP/p7.json")"
  # The bench exits non-zero unless the verdict is passed (not inconclusive).
  "$BIN/checker-bench" 1000000 8 10 >"$TMP/p7c.json" || die "checker-bench with 1 % unknown ops did not pass"
  record P7c "checker time, 1 % unknown outcomes (1M ops)" "$(jq .check_s "$TMP/p7c.json")" "check s" 2 "2 s" le 1.0 \
    "$(cat "$TMP/p7c.json")"
}

# Runs case NAME (delay $2, load flags after) with --batch-max 128, once in
# memory (results NAME) and once with --data-dir (results NAMEd).
memory_and_durable() {
  local name=$1 delay=$2
  shift 2
  SERVER_FLAGS=(--batch-max 128)
  say "${name^^}: delay $delay, $*, --batch-max 128, in memory"
  stress_best "$name" "$delay" "$@"
  SERVER_FLAGS=(--batch-max 128 --data-dir "$DATA")
  say "${name^^}: the same with --data-dir (every batch fdatasync'ed)"
  stress_best "${name}d" "$delay" "$@"
  SERVER_FLAGS=()
}

case_P8() {
  memory_and_durable p8 2ms --connections 4 --streams 256 --accounts 1
  record P8 "group commit in memory (1 account, delay 2ms, 256 streams, batch 128)" "$(throughput p8)" \
    "ops/s" 500 "1 / 2ms" ge 20 "$(jq -c '{latency_us}' "$TMP/p8.json")" p8
  record P8d "group commit durable (the same with --data-dir)" "$(throughput p8d)" "ops/s" 500 "1 / 2ms" \
    ge 10 "$(jq -c --argjson j "$(cat "$TMP/p8d.syncs")" '{latency_us, journal: $j}' "$TMP/p8d.json")" p8d
}

case_P9() {
  memory_and_durable p9 0s --connections 4 --streams 64 --accounts 64
  local detail
  detail=$(jq -cn --argjson j "$(cat "$TMP/p9d.syncs")" --slurpfile d "$TMP/p9d.json" --slurpfile m "$TMP/p9.json" \
    '{journal: $j, syncs_per_op: ($j.syncs / $d[0].operations.total), durable_us: $d[0].latency_us, memory_us: $m[0].latency_us}')
  record P9 "durability cost (delay 0, 64 accounts, 64 streams, batch 128)" "$(throughput p9d)" \
    "durable ops/s" "$(throughput p9)" "in-memory ops/s" ge 0.5 "$detail" p9d p9
}

# PW: what one withdrawal parked waiting for funds costs the server in
# memory: its RSS before and with PW_WAITERS parked (a parked waiter is a
# future and an HTTP/2 stream, not a thread), divided by their number.
PW_WAITERS=8000
PW_ACCOUNTS=8

# The value of bank_waiting_withdrawals on the metrics port $1.
waiting_on() {
  local port=$1 line
  exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf 'GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n' >&3
  line=$(grep '^bank_waiting_withdrawals ' <&3 || true)
  exec 3<&-
  echo "${line#* }"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# P15: the open-model pacer's precision. At each rate, an idle zero-delay
# server: corrected p50 (from the intended send) minus uncorrected p50 (from
# the actual send) is the generator's own lateness at the median; it must
# stay within 50 µs. The schedule's lateness is in the detail.
P15_RATES=(500 5000)
case_P15() {
  local rate worst=0 diff detail="{}" labels=()
  for rate in "${P15_RATES[@]}"; do
    say "P15: --rate $rate, delay 0, 8 accounts: corrected p50 - uncorrected p50"
    bank_server "p15-$rate-server" 0s
    stress "p15-$rate" --rate "$rate" --accounts 8
    stop "$SERVER"
    diff=$(jq '.latency_us.p50 - .latency_us_uncorrected.p50' "$TMP/p15-$rate.json")
    detail=$(jq -c --arg r "$rate" --argjson d "$diff" --slurpfile j "$TMP/p15-$rate.json" \
      '. + {("rate_" + $r): {p50_gap_us: $d, corrected_p50_us: $j[0].latency_us.p50,
             uncorrected_p50_us: $j[0].latency_us_uncorrected.p50, lateness_us: $j[0].schedule.lateness_us,
             warnings: $j[0].warnings}}' <<<"$detail")
    [ "$diff" -gt "$worst" ] && worst=$diff
    labels+=("p15-$rate")
  done
  record P15 "pacer precision: corrected - uncorrected p50, --rate ${P15_RATES[*]}, delay 0 (worst)" \
    "$worst" "us gap" 50 "50 us" le 1.0 "$detail" "${labels[@]}"
}

case_PW() {
  say "PW: server RSS before and with $PW_WAITERS withdrawals parked waiting for funds"
  local metrics rss0 rss1 parker waiting="" per detail
  next_port
  metrics=$PORT
  next_port
  start pw "$BIN/bank-server" --listen "127.0.0.1:$PORT" --metrics-listen "127.0.0.1:$metrics" \
    --processing-delay 0s --max-waiters "$PW_WAITERS" --max-waiters-per-principal "$PW_WAITERS" \
    --max-waiters-per-account $((PW_WAITERS / PW_ACCOUNTS))
  rss0=$(rss_kb "$SERVER")
  "$BIN/park-waiters" --target "http://127.0.0.1:$PORT" --accounts "$PW_ACCOUNTS" \
    --per-account $((PW_WAITERS / PW_ACCOUNTS)) >"$TMP/pw-park.log" 2>&1 &
  parker=$!
  PIDS+=("$parker")
  for _ in $(seq 1 600); do
    waiting=$(waiting_on "$metrics")
    [ "$waiting" = "$PW_WAITERS" ] && break
    sleep 0.05
  done
  [ "$waiting" = "$PW_WAITERS" ] || die "PW: $waiting of $PW_WAITERS waiters parked: $(tail -3 "$TMP/pw-park.log")"
  rss1=$(rss_kb "$SERVER")
  stop "$parker"
  stop "$SERVER"
  per=$(( (rss1 - rss0) * 1024 / PW_WAITERS ))
  detail=$(jq -cn --argjson a "$rss0" --argjson b "$rss1" --argjson n "$PW_WAITERS" \
    '{rss_before_kb: $a, rss_parked_kb: $b, waiters: $n}')
  record PW "memory per parked waiter ($PW_WAITERS parked, server RSS delta)" "$per" "bytes/waiter" \
    16384 "16 KiB" le 1.0 "$detail"
}

# M1: what one remembered request id costs (the docs' sizing of
# --request-id-retention and --max-request-ids). No server: bench/src/bin/
# id-memory runs the ledger in process under a counting allocator, 10
# accounts x 100,000 ids (the default retention), each id length in its own
# process; fill, then as many again (steady: each account forgets its
# oldest). The RSS growth per id of 64-byte ids (the longest accepted) in
# steady state is the number kept; every row is in the detail.
case_M1() {
  say "M1: memory per remembered request id (id-memory, 16/25/64-byte ids)"
  "$BIN/id-memory" --json >"$TMP/m1.jsonl" || die "M1: id-memory failed"
  local worst
  worst=$(jq -s '[.[] | select(.phase == "steady" and .id_bytes == 64) | .rss_bytes_per_id] | max' "$TMP/m1.jsonl")
  record M1 "memory per remembered request id (64-byte ids, steady state, RSS growth)" "$worst" "B/id" 1 \
    "per id" le 300 "$(jq -sc '{rows: .}' "$TMP/m1.jsonl")"
}

# ---------------------------------------------------------------- main

install_tools
build
for case in $CASES; do
  declare -F "case_$case" >/dev/null || die "unknown case $case (P1..P15, P3T, PW, M1)"
  "case_$case"
done

printf '\n%-5s | %-72s | %-44s | %-7s | %-6s | %-4s | %s\n' case what measured target ratio pass noise
printf '%s\n' "$(printf -- '-%.0s' $(seq 1 160))"
jq -r '[.case, .name,
        "\(.measured * 100 | round / 100) \(.measured_label) / \(.reference * 100 | round / 100)",
        "\(if .target.cmp == "ge" then ">=" else "<=" end) \(.target.value)",
        (.ratio * 1000 | round / 1000 | tostring), (if .pass then "PASS" else "MISS" end),
        "\(.noise * 100 | round)%"] | @tsv' \
  "$RESULTS" | while IFS=$'\t' read -r c n m t r p o; do
  printf '%-5s | %-72s | %-44s | %-7s | %-6s | %-4s | %s\n' "$c" "$n" "$m" "$t" "$r" "$p" "$o"
done
echo "noise: the largest share of the machine's CPU that other processes used during a run of the case"
echo "CPU per op (user + system from /proc, in µs; client = the load generator):"
jq -r '.case as $c | .cpu | to_entries[] | select(.value.ops != null)
       | "  \($c) \(.key): client \(.value.client_us_per_op * 10 | round / 10), server \(.value.server_us_per_op * 10 | round / 10) (\(.value.ops) ops)"' \
  "$RESULTS"
jq -e 'map(select(.noise > 0.05)) | length > 0' -s "$RESULTS" >/dev/null &&
  echo "bench: WARNING: other processes were busy during some runs; their numbers are low" >&2

mkdir -p "$(dirname "$OUT")"
jq -s --arg date "$(date -u +%FT%TZ)" --arg rev "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
  --argjson cores "$(nproc)" --arg kernel "$(uname -r)" \
  --argjson duration "$DURATION" --argjson warmup "$WARMUP" --argjson reps "$REPS" '
  { date: $date, git: $rev, reps: $reps,
    machine: { cpu: $cpu, cores: $cores, kernel: $kernel,
               note: "server and load generator run on the same machine and share its cores" },
    duration_s: $duration, warmup_s: $warmup, cases: . }' "$RESULTS" >"$OUT"
say "wrote $OUT"

if [ "$SMOKE" != 1 ] && jq -e '.cases | map(select(.pass | not)) | length > 0' "$OUT" >/dev/null; then
  exit 1
fi
