# bench/pg.sh — the PostgreSQL cases of bench/run.sh (sourced by it; not a
# script of its own): P10, P11, P12 need a PostgreSQL server, so they run
# only when asked for (BENCH_CASES) or when PostgreSQL is installed. The
# first case that needs one starts a fresh cluster in $TMP, run as the
# `postgres` user (when root) on a free port; run.sh's cleanup stops it.
#
#   P10  zero delay, 64 accounts: PostgreSQL ops/s ÷ in-memory ops/s (reported)
#   P11  two servers ÷ one on one database, 256 accounts, delay 20ms,
#        --database-pool 8 each (the pool is the per-server resource): ≥ 1.8
#   P12  one hot account, delay 2ms, --batch-max 128: ops/s ÷ (1/d) ≥ 10

PG_CASES="P10 P11 P12"
PG_URL=""

# The newest installed PostgreSQL's bin directory (empty when none).
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true; }

# Whether the PostgreSQL cases can run here without installing anything.
pg_available() { [ -x "$(pg_bin)/initdb" ]; }

pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Starts the cluster once; sets PG_URL and PG_PID (added to PIDS).
pg_cluster() {
  [ -n "$PG_URL" ] && return
  local bin home port
  bin="$(pg_bin)"
  [ -x "$bin/initdb" ] || die "the PostgreSQL cases need PostgreSQL (apt-get install postgresql, or run .ci/postgres.sh once)"
  home="$TMP/pg"
  mkdir -p "$home"
  chmod 755 "$TMP"
  [ "$(id -u)" -ne 0 ] || chown postgres "$home"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  pg_as_owner "$bin/initdb" -D "$home/data" -A trust -U bank --no-sync >"$TMP/initdb.log" 2>&1 || die "initdb failed"
  pg_as_owner "$bin/pg_ctl" -D "$home/data" -l "$home/postgres.log" -w -t 60 \
    -o "-p $port -k $home -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null ||
    die "PostgreSQL did not start"
  PG_PID=$(head -1 "$home/data/postmaster.pid")
  PIDS+=("$PG_PID")
  pg_as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U bank -d postgres -qc "CREATE DATABASE bank" || die "createdb failed"
  PG_URL="postgres://bank@127.0.0.1:$port/bank"
  say "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on port $port (fsync on, synchronous_commit on)"
}

# CPU seconds the PostgreSQL processes have used so far (the postmaster,
# its live backends, and the backends that exited).
pg_cpu() {
  local pid total=0 t
  for pid in $PG_PID $(pgrep -P "$PG_PID" || true); do
    t=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  awk -v t="$total" -v hz="$HZ" 'BEGIN { printf "%.2f\n", t / hz }'
}

# pg_best LABEL DELAY SERVERS [stress-client flags]: best of REPS runs, each
# against SERVERS fresh bank-servers (SERVER_FLAGS) on the database, the load
# spread over them (--target each); PostgreSQL's CPU during the run in
# $TMP/LABEL.pgcpu.
pg_best() {
  local label=$1 delay=$2 servers=$3 rep i pg0
  shift 3
  pg_cluster
  for rep in $(seq 1 "$REPS"); do
    local targets=() pids=()
    for i in $(seq 1 "$servers"); do
      bank_server "$label.$rep-server$i" "$delay" --database-url "$PG_URL" "${SERVER_FLAGS[@]}"
      targets+=(--target "http://127.0.0.1:$PORT")
      pids+=("$SERVER")
    done
    EXTRA="${pids[*]:0:${#pids[@]}-1}"
    pg0=$(pg_cpu)
    local commits0
    commits0=$(pg_commits)
    measure "$label.$rep" "$BIN/stress-client" "${targets[@]}" \
      --duration "${DURATION}s" --warmup "${WARMUP}s" --read-ratio 0 --duplicate-ratio 0 \
      --quiet --json "$TMP/$label.$rep.json" "$@"
    awk -v a="$(pg_cpu)" -v b="$pg0" 'BEGIN { printf "%.2f\n", a - b }' >"$TMP/$label.$rep.pgcpu"
    echo $(($(pg_commits) - commits0)) >"$TMP/$label.$rep.commits"
    # PostgreSQL is part of the case, not noise: out of "others" it goes.
    awk -v pg="$(cat "$TMP/$label.$rep.pgcpu")" '{ o = $3 - pg; if (o < 0) o = 0; printf "%s %s %.2f %s\n", $1, $2, o, $4 }' \
      "$TMP/$label.$rep.cpu" >"$TMP/$label.$rep.cpu.new" && mv "$TMP/$label.$rep.cpu.new" "$TMP/$label.$rep.cpu"
    EXTRA=""
    [ "$(jq .consistency.passed "$TMP/$label.$rep.json")" = true ] || die "$label: consistency check failed"
    ops_stress "$label.$rep"
    for i in "${pids[@]}"; do stop "$i"; done
    jq .throughput_ops_per_s "$TMP/$label.$rep.json" >"$TMP/$label.$rep.rate"
    keep_best "$label" "$rep"
  done
}

# Transactions committed in the bank database so far (its statistics lag a
# busy backend by up to a second; the run's warm-up is counted too, so the
# commits per op are an upper bound).
pg_commits() {
  pg_as_owner "$(pg_bin)/psql" "$PG_URL" -tAc \
    "SELECT xact_commit FROM pg_stat_database WHERE datname = 'bank'" 2>/dev/null || echo 0
}

# Commits per op of a kept run.
pg_commits_per_op() {
  awk -v c="$(cat "$TMP/$1.commits")" -v n="$(cat "$TMP/$1.ops")" 'BEGIN { printf "%.3f\n", (n > 0) ? c / n : 0 }'
}

# PostgreSQL's CPU per op of a kept run, in µs.
pg_us_per_op() {
  awk -v c="$(cat "$TMP/$1.pgcpu")" -v n="$(cat "$TMP/$1.ops")" 'BEGIN { printf "%.1f\n", (n > 0) ? c * 1e6 / n : 0 }'
}

# P10's ops go on the server's one-trip lane (schema version 6): the ops
# queued meanwhile ride one call of bank_many, one commit; its detail
# reports the commits per op measured (one per op before the lane).
case_P10() {
  local flow=(--connections 4 --streams 64 --accounts 64)
  say "P10: zero delay, 64 accounts, 64 streams: in memory"
  SERVER_FLAGS=()
  stress_best p10m 0s "${flow[@]}"
  say "P10: the same with the ledger in PostgreSQL"
  pg_best p10 0s 1 "${flow[@]}"
  local detail
  detail=$(jq -cn --slurpfile d "$TMP/p10.json" --slurpfile m "$TMP/p10m.json" --argjson pg "$(pg_us_per_op p10)" \
    --argjson commits "$(pg_commits_per_op p10)" \
    '{postgres_us_per_op: $pg, commits_per_op: $commits, pg_latency_us: $d[0].latency_us, memory_latency_us: $m[0].latency_us}')
  # The target is issue 20's (>= 0.10 of the in-memory server on the same machine).
  record P10 "PostgreSQL cost (delay 0, 64 accounts, 64 streams)" "$(throughput p10)" \
    "PG ops/s" "$(throughput p10m)" "in-memory ops/s" ge 0.10 "$detail" p10 p10m
}

case_P11() {
  local flow=(--connections 4 --streams 256 --accounts 256)
  SERVER_FLAGS=(--database-pool 8)
  say "P11: one server on PostgreSQL, 256 accounts, delay 20ms, --database-pool 8"
  pg_best p11one 20ms 1 "${flow[@]}"
  say "P11: two servers on the same database, --target each"
  pg_best p11two 20ms 2 "${flow[@]}"
  SERVER_FLAGS=()
  record P11 "two servers ÷ one (256 accounts, delay 20ms, --database-pool 8 each)" "$(throughput p11two)" \
    "2 servers ops/s" "$(throughput p11one)" "1 server ops/s" ge 1.8 \
    "$(jq -c --argjson one "$(pg_us_per_op p11one)" --argjson two "$(pg_us_per_op p11two)" \
      '{latency_us, postgres_us_per_op: {one: $one, two: $two}}' "$TMP/p11two.json")" p11two p11one
}

case_P12() {
  SERVER_FLAGS=(--batch-max 128)
  say "P12: group commit on PostgreSQL, one hot account, delay 2ms, 256 streams, --batch-max 128"
  pg_best p12 2ms 1 --connections 4 --streams 256 --accounts 1
  SERVER_FLAGS=()
  record P12 "group commit on PostgreSQL (1 account, delay 2ms, 256 streams, batch 128)" "$(throughput p12)" \
    "ops/s" 500 "1 / 2ms" ge 10 "$(jq -c --argjson pg "$(pg_us_per_op p12)" '{latency_us, postgres_us_per_op: $pg}' "$TMP/p12.json")" p12
}
