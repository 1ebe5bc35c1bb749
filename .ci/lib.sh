# .ci/lib.sh — helpers the process-level CI scripts share (sourced, never
# run). The sourcing script sets WORK (its temp dir, whose *.log files a
# failure shows) and FAIL_PREFIX (how its failures start), then calls
# `need_tools BIN...` before it starts anything.

# Says why the script failed, shows the last lines of every log in $WORK
# (FAIL_LOG_LINES, default 8, after dropping lines matching FAIL_LOG_SKIP
# when set), and exits 1.
fail() {
  echo "${FAIL_PREFIX:-CI} FAILED: $*" >&2
  local f
  for f in "$WORK"/*.log; do
    [ -e "$f" ] || continue
    echo "--- last lines of $(basename "$f")" >&2
    if [ -n "${FAIL_LOG_SKIP:-}" ]; then
      grep -v "$FAIL_LOG_SKIP" "$f" | tail -"${FAIL_LOG_LINES:-8}" >&2 || true
    else
      tail -"${FAIL_LOG_LINES:-8}" "$f" >&2 || true
    fi
  done
  exit 1
}

# Fails unless every binary given is built and jq is installed.
need_tools() {
  local bin
  for bin in "$@"; do
    [ -x "$bin" ] || fail "$bin is missing: run cargo build --release --bins first"
  done
  command -v jq >/dev/null || fail "jq is needed to read the stress-client --json report"
}

# True while process $1 runs (a zombie has exited).
alive() {
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)"
  [ -n "$state" ] && [ "$state" != Z ]
}

# A free TCP port on 127.0.0.1 (the kernel's pick, released at once).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to $3 polls of 50 ms for a line matching $2 in file $1; true once
# it is there.
await_log() {
  local file=$1 pattern=$2 polls=$3
  for _ in $(seq 1 "$polls"); do
    grep -qs "$pattern" "$file" && return 0
    sleep 0.05
  done
  return 1
}

# Makes sure the Python venv $VENV (default: BANK_CI_VENV or target/ci-venv,
# the one .ci/interop.sh makes) has examples/python/requirements.txt
# (grpcio, grpcio-tools, grpcio-health-checking), making it when missing.
need_venv() {
  VENV="${VENV:-${BANK_CI_VENV:-target/ci-venv}}"
  "$VENV/bin/python" -c 'import grpc, grpc_tools, grpc_health' >/dev/null 2>&1 && return 0
  rm -rf "$VENV"
  python3 -m venv "$VENV" || fail "could not create a venv with python3 -m venv ($VENV)"
  PIP_NO_INPUT=1 "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --progress-bar off \
    -r examples/python/requirements.txt || fail "pip install into $VENV failed"
}
