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
