#!/usr/bin/env bash
# Many load machines, one verdict (issue 23), on one machine: examples/multi.sh
# (setup, three --attach processes at once, unary and stream, check --target)
# must pass against a correct bank-server and fail with the right kind against
# two planted bugs, while each process alone is inconclusive (exit 3, which
# the example checks); unreadable histories (truncated, another run, garbage)
# must exit 2 naming the file; the Kubernetes manifest must parse as YAML.
# Needs the release binaries (cargo build --release --bins), jq and python3
# with PyYAML for the manifest (skipped, said so, without it), and the venv
# of .ci/interop.sh (grpcio, made when missing). About 30 s.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="$(mktemp -d)"
FAIL_PREFIX="multi"
# shellcheck source=.ci/lib.sh
source .ci/lib.sh
export STRESS_BIN="${MULTI_CLIENT_BIN:-./target/release/stress-client}"
export SERVER_BIN="${MULTI_SERVER_BIN:-./target/release/bank-server}"
need_tools "$STRESS_BIN" "$SERVER_BIN"

# case name, server flags, expected exit, violation kind the verdict must name
run_case() {
  local name=$1 flags=$2 want=$3 kind=$4 code=0
  mkdir -p "$WORK/$name"
  OUT="$WORK/$name" SERVER_FLAGS="$flags" RUN_ID="ci_$name" bash examples/multi.sh \
    >"$WORK/$name.log" 2>&1 || code=$?
  [ "$code" = "$want" ] || fail "$name: check exited $code, expected $want"
  if [ -n "$kind" ]; then
    jq -e --arg k "$kind" '[.consistency.violations[].kind] | index($k)' "$WORK/$name/check.json" >/dev/null \
      || fail "$name: no $kind violation in $(jq -c '[.consistency.violations[].kind] | unique' "$WORK/$name/check.json")"
  fi
  echo "multi: $name -> exit $code ${kind:+($kind)}"
}
run_case correct "" 0 ""
run_case lost_update "--inject-bug lost-update" 1 lost_update
LOAD="--duration 2s --warmup 0s --streams 8 --transfer-ratio 0.8 --deposit-ratio 0.1" \
  run_case non_atomic "--inject-bug non-atomic-transfer" 1 order_cycle

# Unreadable input: exit 2 and a message naming the file.
head -n 2 "$WORK/correct/setup.jsonl" >"$WORK/cut.jsonl"   # header and one account: no end line
echo 'not json' >"$WORK/garbage.jsonl"
for bad in "cut.jsonl:truncated" "garbage.jsonl:garbage.jsonl:1" "mixed:mixed runs"; do
  file="${bad%%:*}" want="${bad#*:}" code=0
  if [ "$file" = mixed ]; then
    args=("$WORK/correct/setup.jsonl" "$WORK/lost_update/setup.jsonl")
  else
    args=("$WORK/$file")
  fi
  "$STRESS_BIN" check "${args[@]}" >"$WORK/bad.log" 2>&1 || code=$?
  [ "$code" = 2 ] || fail "check on $file exited $code, expected 2"
  grep -q "$want" "$WORK/bad.log" || fail "check on $file did not say '$want': $(cat "$WORK/bad.log")"
  echo "multi: unreadable $file -> exit 2"
done

# Another client: examples/python/history_client.py writes the same format;
# check passes it on a correct server and fails it on a zoo bug.
python_case() {
  local name=$1 flags=$2 want=$3 addr="" pid code=0
  # shellcheck disable=SC2086
  "$SERVER_BIN" --listen 127.0.0.1:0 --processing-delay 1ms $flags >"$WORK/py-$name-server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do
    addr="$(grep -o 'listening addr=127\.0\.0\.1:[0-9]*' "$WORK/py-$name-server.log" 2>/dev/null | head -1 || true)"
    [ -n "$addr" ] && break
    sleep 0.05
  done
  [ -n "$addr" ] || fail "bank-server $flags did not start"
  "$VENV/bin/python" examples/python/history_client.py --target "127.0.0.1:${addr##*:}" \
    --history "$WORK/py-$name.jsonl" --accounts 1 --threads 8 --ops 800 >"$WORK/py-$name.log" 2>&1 \
    || { kill "$pid"; fail "history_client.py against $name"; }
  kill "$pid"; wait "$pid" 2>/dev/null || true
  "$STRESS_BIN" check "$WORK/py-$name.jsonl" >>"$WORK/py-$name.log" 2>&1 || code=$?
  [ "$code" = "$want" ] || fail "check of the Python history ($name) exited $code, expected $want"
  echo "multi: python history ($name) -> exit $code"
}
need_venv
python_case correct "" 0
python_case lost_update "--inject-bug lost-update" 1

if python3 -c 'import yaml' 2>/dev/null; then
  python3 -c 'import sys, yaml; docs = list(yaml.safe_load_all(open(sys.argv[1]))); assert [d["kind"] for d in docs] == ["PersistentVolumeClaim", "Job", "Job", "Job"], docs' \
    examples/k8s/multi.yaml || fail "examples/k8s/multi.yaml does not parse"
  echo "multi: examples/k8s/multi.yaml parses"
else
  echo "multi: PyYAML missing, manifest not parsed"
fi
rm -rf "$WORK"
echo "multi: OK"
