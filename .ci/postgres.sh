#!/usr/bin/env bash
# The PostgreSQL backend (--database-url) against a real PostgreSQL: Debian's
# `postgresql` package (installed when missing), a fresh cluster in a
# temporary directory run as the `postgres` user on a free port. Then:
#
#   (0) the integration tests that need a database (BANK_TEST_DATABASE_URL);
#   (1) one server: the verdict passes;
#   (2) two servers on the same database, --target A --target B: passes;
#   (3) the same, SIGKILL one server mid-run: passes, every op settled;
#   (4) --inject-bug lost-update (no FOR UPDATE) on two servers under
#       read-committed: the verdict fails (exit 1) with a lost update;
#       the same bug under --isolation repeatable-read passes (the conflict
#       is a serialization failure, retried);
#   (5) the database stopped mid-run: writes answer UNAVAILABLE, nothing
#       acknowledged is lost, and the server serves again once it is back;
#   (6) the bug zoo on PostgreSQL (.ci/zoo.sh with --database-url): each of
#       the six --inject-bug names is caught, the correct server passes.
#
# Needs the release binaries (cargo build --release --bins) and jq.
# PG_SECTIONS="1 5" runs only some. Everything started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER_BIN="${PG_SERVER_BIN:-./target/release/bank-server}"
CLIENT_BIN="${PG_CLIENT_BIN:-./target/release/stress-client}"
WORK="$(mktemp -d)"
chmod 755 "$WORK"
PIDS=()
PG_BIN=""
PG_HOME="$WORK/pg"
PGDATA="$PG_HOME/data"
PG_STARTED=""

step() { printf '\n==== postgres: %s ====\n' "$*"; }

# Runs a PostgreSQL tool as the cluster's owner (`postgres` when we are root).
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -z "$PG_STARTED" ] || as_owner "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

FAIL_PREFIX=POSTGRES
# shellcheck source=.ci/lib.sh
. .ci/lib.sh
need_tools "$SERVER_BIN" "$CLIENT_BIN"

# ---------------------------------------------------------------------------
install_postgres() {
  PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
    step "installing Debian's postgresql package"
    [ "$(id -u)" -eq 0 ] || fail "PostgreSQL is not installed and we are not root: apt-get install postgresql"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  fi
  echo "PostgreSQL: $("$PG_BIN/postgres" --version)"
}

start_cluster() {
  PG_PORT=$(free_port)
  mkdir -p "$PG_HOME"
  [ "$(id -u)" -ne 0 ] || chown postgres "$PG_HOME"
  as_owner "$PG_BIN/initdb" -D "$PGDATA" -A trust -U bank --no-sync >"$WORK/initdb.out" 2>&1 ||
    { cat "$WORK/initdb.out"; fail "initdb failed"; }
  pg_start
  as_owner "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U bank -d postgres -qc "CREATE DATABASE bank" ||
    fail "cannot create the database"
  DB_URL="postgres://bank@127.0.0.1:$PG_PORT/bank"
  echo "cluster in $PGDATA on port $PG_PORT: $DB_URL"
}

pg_start() {
  as_owner "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PG_HOME/postgres.log" -w -t 60 \
    -o "-p $PG_PORT -k $PG_HOME -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null ||
    fail "PostgreSQL did not start"
  PG_STARTED=yes
}

pg_stop() {
  as_owner "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null || fail "PostgreSQL did not stop"
  PG_STARTED=""
}

# Starts bank-server $1 (a name) on a free port with the given flags; sets
# PORT_<name>, PID_<name>.
start_server() {
  local name=$1 port log
  shift
  port=$(free_port)
  log="$WORK/server-$name.log"
  "$SERVER_BIN" --listen "127.0.0.1:$port" --database-url "$DB_URL" "$@" >"$log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 200); do
    grep -qs 'ledger in PostgreSQL' "$log" && break
    alive "$pid" || fail "bank-server $name exited at startup: $(tail -2 "$log")"
    sleep 0.05
  done
  grep -qs 'ledger in PostgreSQL' "$log" || fail "bank-server $name never came up"
  printf -v "PORT_$name" '%s' "$port"
  printf -v "PID_$name" '%s' "$pid"
}

stop_server() {
  local pid_var="PID_$1"
  kill -KILL "${!pid_var}" 2>/dev/null || true
  wait "${!pid_var}" 2>/dev/null || true
}

url_of() { local v="PORT_$1"; echo "http://127.0.0.1:${!v}"; }

# A stress run (report $1) against the targets in TARGETS, for $2; extra flags follow.
# Runs in the foreground; sets RC.
load() {
  local name=$1 duration=$2
  shift 2
  local targets=()
  for t in $TARGETS; do targets+=(--target "$(url_of "$t")"); done
  RC=0
  "$CLIENT_BIN" "${targets[@]}" --connections 4 --streams 32 --duration "$duration" --warmup 0s \
    --timeout 3s --resolve-timeout 30s --quiet --json "$WORK/$name.json" "$@" \
    >"$WORK/$name-client.log" 2>&1 || RC=$?
}

# The same in the background; sets CLIENT_PID (rc_of reads its exit).
load_bg() {
  load "$@" &
  CLIENT_PID=$!
  PIDS+=("$CLIENT_PID")
}

# The exit a finished background run stands for, from its report.
rc_of() {
  jq -r 'if .operations.total == 0 then 2 elif .consistency.verdict == "passed" then 0
         elif .consistency.verdict == "failed" then 1 else 3 end' "$1" 2>/dev/null || echo 2
}

verdict() { jq -c '{verdict: .consistency.verdict, violations: [.consistency.violations[]?.kind] | unique, codes: .status_codes, ops: .operations.total, unknown: .operations.indeterminate, unresolved: .operations.unresolved}' "$1" 2>/dev/null || echo "(no report)"; }

WORKLOAD=(--accounts 16 --transfer-ratio 0.3 --deposit-ratio 0.3 --read-ratio 0.05 --duplicate-ratio 0.02 --mode unary)

# ---------------------------------------------------------------------------
section_0() {
  step "(0) integration tests with BANK_TEST_DATABASE_URL"
  BANK_TEST_DATABASE_URL="$DB_URL" cargo test -q -p bank-server --test pg --test pg_grpc --test backends --test pg_many \
    --test pg_wake >"$WORK/tests.out" 2>&1 ||
    { tail -40 "$WORK/tests.out"; fail "the PostgreSQL integration tests failed"; }
  grep "test result" "$WORK/tests.out"
  ! grep -q "skipped" "$WORK/tests.out" || fail "the PostgreSQL tests were skipped with the URL set"
}

section_1() {
  step "(1) one server on PostgreSQL: the verdict passes"
  start_server one --processing-delay 1ms
  TARGETS="one" load one 4s "${WORKLOAD[@]}"
  echo "stress-client exit $RC: $(verdict "$WORK/one.json")"
  [ "$RC" = 0 ] || fail "one server on PostgreSQL: exit $RC"
  stop_server one
}

section_2() {
  step "(2) two servers on one database, --target A --target B: the verdict passes"
  start_server a --processing-delay 1ms
  start_server b --processing-delay 1ms
  TARGETS="a b" load two 4s "${WORKLOAD[@]}"
  echo "stress-client exit $RC: $(verdict "$WORK/two.json")"
  [ "$RC" = 0 ] || fail "two servers: exit $RC"
  [ "$(jq -r '.config.targets | length' "$WORK/two.json")" = 2 ] || fail "config.targets is not the list of both"
  stop_server a
  stop_server b
}

section_3() {
  step "(3) two servers, SIGKILL one mid-run: the verdict passes, its in-flight ops settled through the other"
  start_server a --processing-delay 1ms
  start_server b --processing-delay 1ms
  local killed
  # Open loop (--rate): a fixed pace, so the run's length does not depend on
  # how the dead target's connections back off (10 ms doubling to 1 s).
  TARGETS="a b" load_bg three 8s "${WORKLOAD[@]}" --rate 1000
  sleep 3
  echo "SIGKILL bank-server a (pid $PID_a)"
  stop_server a
  wait "$CLIENT_PID" || true
  RC=$(rc_of "$WORK/three.json")
  echo "verdict: $(verdict "$WORK/three.json")"
  [ "$RC" = 0 ] || fail "killing one of two servers must lose nothing: $(verdict "$WORK/three.json")"
  [ "$(jq -r .operations.unresolved "$WORK/three.json")" = 0 ] || fail "in-flight ops of the dead server were never settled"
  stop_server b
}

section_4() {
  step "(4) --inject-bug lost-update (no FOR UPDATE) on two servers: read-committed fails, repeatable-read passes"
  local bug=(--processing-delay 5ms --inject-bug lost-update)
  local race=(--accounts 1 --deposit-ratio 0.3 --transfer-ratio 0 --mode unary)
  start_server a "${bug[@]}"
  start_server b "${bug[@]}"
  TARGETS="a b" load lost 3s "${race[@]}"
  echo "read-committed, no row lock: exit $RC: $(verdict "$WORK/lost.json")"
  [ "$RC" = 1 ] || fail "the lost update across two servers must fail the verdict (exit 1), got $RC"
  jq -e '[.consistency.violations[]?.kind] | index("lost_update")' "$WORK/lost.json" >/dev/null ||
    fail "the verdict failed without naming a lost_update"
  stop_server a
  stop_server b
  start_server a "${bug[@]}" --isolation repeatable-read
  start_server b "${bug[@]}" --isolation repeatable-read
  TARGETS="a b" load lost-rr 3s "${race[@]}"
  echo "repeatable-read, same bug: exit $RC: $(verdict "$WORK/lost-rr.json")"
  [ "$RC" = 0 ] || fail "repeatable-read must turn the lost update into retried conflicts, got $RC"
  stop_server a
  stop_server b
}

section_5() {
  step "(5) the database stopped mid-run: UNAVAILABLE, no acknowledged loss, service again once it is back"
  start_server one --processing-delay 1ms
  TARGETS="one" load_bg down 10s "${WORKLOAD[@]}"
  sleep 3
  echo "stopping PostgreSQL"
  pg_stop
  sleep 3
  echo "starting PostgreSQL again"
  pg_start
  wait "$CLIENT_PID" || true
  RC=$(rc_of "$WORK/down.json")
  echo "verdict: $(verdict "$WORK/down.json")"
  [ "$RC" = 0 ] || fail "a database outage must lose nothing acknowledged: $(verdict "$WORK/down.json")"
  jq -e '.status_codes | to_entries | map(select(.key | test("UNAVAILABLE|14"))) | length > 0' "$WORK/down.json" >/dev/null ||
    fail "no call answered UNAVAILABLE while the database was down"
  grep -q "ledger database is unavailable" "$WORK/down-client.log" "$WORK/server-one.log" 2>/dev/null ||
    echo "(the UNAVAILABLE message is in the report's grouped errors)"
  TARGETS="one" load after 2s "${WORKLOAD[@]}"
  echo "after the outage: exit $RC: $(verdict "$WORK/after.json")"
  [ "$RC" = 0 ] || fail "the server did not serve again after the database came back"
  stop_server one
}

section_6() {
  step "(6) the bug zoo on PostgreSQL: six bugs caught, the correct server passes"
  ZOO_SERVER_ARGS="--database-url $DB_URL" ZOO_SERVER_BIN="$SERVER_BIN" ZOO_CLIENT_BIN="$CLIENT_BIN" .ci/zoo.sh ||
    fail "the zoo on PostgreSQL"
}

install_postgres
start_cluster
for section in ${PG_SECTIONS:-0 1 2 3 4 5 6}; do
  "section_$section"
done
step "all sections passed"
