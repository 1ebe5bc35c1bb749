#!/usr/bin/env bash
# The HTML report in a real browser: a short open-loop stress-client run
# writes --html and --csv; headless Chromium (Debian's package) loads the
# page offline, dumps the DOM and a screenshot, and logs the console. The
# page must be self-contained (no script, no external URL), hold its charts
# with data points and the warmup shaded, show the schedule's lateness and
# (on a second, overloaded run) the warnings, and log nothing to the console.
set -euo pipefail
cd "$(dirname "$0")/.."

STRESS="${STRESS_BIN:-./target/release/stress-client}"
OUT="${HTML_CI_DIR:-target/ci-html}"
# Charts whose series must hold data: latency p50/p99/max, ops/s, errors/s,
# corrected and uncorrected spectrum.
MIN_SERIES=7
# Two latency charts, each with at least two labelled y ticks.
MIN_UNIT_TICKS=4
mkdir -p "$OUT"

printf '\n==== HTML report in headless Chromium ====\n'
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

"$STRESS" --server-delay 0s --duration 3s --warmup 500ms --rate 400 --streams 8 --quiet \
  --html "$OUT/report.html" --csv "$OUT/report.csv" --json "$OUT/report.json"

fail() { echo "html.sh: $*" >&2; exit 1; }

# Self-contained: no script and nothing fetched from anywhere.
if grep -qiE '<script|(src|href)=|@import|url\(' "$OUT/report.html"; then
  fail "the page references external resources or scripts"
fi
head -1 "$OUT/report.csv" | grep -qx 'time_s,ops,errors,p50_us,p99_us,max_us,phase' || fail "bad CSV header"
# The warmup second is marked in the CSV (its latency cells hold only what
# was measured after the warmup, empty rather than 0 when nothing was).
sed -n 2p "$OUT/report.csv" | grep -qE ',warmup$' || fail "the CSV's first second is not marked warmup"


page="file://$(realpath "$OUT/report.html")"
chrome=(chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run --disable-extensions
        --enable-logging=stderr --v=0 --window-size=900,3000)
timeout 60 "${chrome[@]}" --dump-dom "$page" >"$OUT/dom.html" 2>"$OUT/console.log"
timeout 60 "${chrome[@]}" --screenshot="$OUT/report.png" "$page" >/dev/null 2>>"$OUT/console.log"

charts=$(grep -o '<svg class="chart"' "$OUT/dom.html" | wc -l)
series=$(grep -oE 'data-points="[0-9]+"' "$OUT/dom.html" | grep -cvE '"[01]"' || true)
dots=$(grep -o '<circle' "$OUT/dom.html" | wc -l)
echo "rendered: $charts charts, $series series with data, $dots points"
[ "$charts" -ge 4 ] || fail "expected 4 charts in the DOM, got $charts"
[ "$series" -ge "$MIN_SERIES" ] || fail "expected $MIN_SERIES series with data, got $series"
[ "$dots" -gt 0 ] || fail "no data points drawn"
# Warmup (and drain) seconds are drawn shaded in both timeline charts, in the rendered DOM.
shaded=$(grep -o '<rect class="phase" data-phase="warmup"' "$OUT/dom.html" | wc -l)
echo "shaded: $shaded warmup bands"
[ "$shaded" -ge 2 ] || fail "expected the warmup second shaded in both timeline charts, got $shaded bands"
grep -q 'id="verdict"' "$OUT/dom.html" || fail "no verdict in the DOM"
# Latency axes (latency per second, spectrum) carry their unit on every tick: "2.5 ms", not "2.5k".
unit_ticks=$(grep -oE 'class="tick"[^>]*>[0-9.]+ (µs|ms|s)</text>' "$OUT/dom.html" | wc -l)
echo "latency axis ticks with a unit: $unit_ticks"
[ "$unit_ticks" -ge "$MIN_UNIT_TICKS" ] || fail "expected $MIN_UNIT_TICKS latency ticks with a unit (µs, ms, s), got $unit_ticks"
# The page has no script: any console message (Chromium logs them as
# "CONSOLE" lines at every level, errors and "Uncaught ..." included) is a fault.
if grep -E 'CONSOLE|Uncaught' "$OUT/console.log"; then
  fail "the console logged messages (see $OUT/console.log)"
fi
[ -s "$OUT/report.png" ] || fail "no screenshot"

# Warnings and lateness: one worker cannot keep --rate 2000 against a 5 ms
# server, so the run warns (late sends, rate not kept); the page must show
# both warnings and the schedule line, in the rendered DOM.
"$STRESS" --server-delay 5ms --duration 1s --warmup 0s --rate 2000 --streams 1 --connections 1 \
  --accounts 2 --quiet --html "$OUT/warned.html" --json "$OUT/warned.json"
[ "$(jq '.warnings | length' "$OUT/warned.json")" -ge 1 ] || fail "the overloaded run gave no warning"
timeout 60 "${chrome[@]}" --dump-dom "file://$(realpath "$OUT/warned.html")" >"$OUT/warned-dom.html" 2>>"$OUT/console.log"
warned=$(grep -o '<p class="warning">WARNING: [^<]*' "$OUT/warned-dom.html" | grep -c 'workers busy' || true)
echo "warnings shown: $warned (workers busy)"
[ "$warned" -ge 1 ] || fail "the page does not show the run's warnings"
grep -qE '<p id="schedule">Schedule: sends left late by p50 [0-9.]+ (µs|ms|s) ' "$OUT/warned-dom.html" ||
  fail "the page does not show the schedule's lateness"
grep -qE '<p id="schedule">Schedule: sends left late by p50 [0-9.]+ (µs|ms|s) ' "$OUT/dom.html" ||
  fail "the open-loop page does not show the schedule's lateness"
if grep -E 'CONSOLE|Uncaught' "$OUT/console.log"; then
  fail "the console logged messages (see $OUT/console.log)"
fi
echo "HTML report OK: $OUT/report.html, screenshot $OUT/report.png"
