#!/usr/bin/env bash
# Hostile clients against a release bank-server (issue: "Nobody can take the
# bank down or make it pay twice"). Each attack is a stand-alone script in
# .ci/siege/ that starts its own server(s), runs the attack, asserts what a
# victim sees (answers within the stated bound, balances unchanged, the
# attacker refused with the named status) and stops everything it started.
# SIEGE_SERVER_BIN / SIEGE_CLIENT_BIN point at other binaries (e.g. debug
# builds); SIEGE_ONLY="name ..." runs only some attacks. Needs python3.
set -euo pipefail
cd "$(dirname "$0")/.."

export SIEGE_SERVER_BIN="${SIEGE_SERVER_BIN:-./target/release/bank-server}"
export SIEGE_CLIENT_BIN="${SIEGE_CLIENT_BIN:-./target/release/stress-client}"
[ -x "$SIEGE_SERVER_BIN" ] || { echo "siege: $SIEGE_SERVER_BIN missing (cargo build --release --bins)" >&2; exit 1; }

printf '\n==== siege: hostile clients ====\n'
for script in .ci/siege/*.sh; do
  [ -e "$script" ] || continue
  name="$(basename "$script" .sh)"
  if [ -n "${SIEGE_ONLY:-}" ] && ! grep -qw "$name" <<<"$SIEGE_ONLY"; then continue; fi
  start=$(date +%s)
  bash "$script" || { echo "siege FAILED: $name" >&2; exit 1; }
  echo "siege: $name passed in $(( $(date +%s) - start )) s"
done
echo "siege: every attack failed to hurt the bank"
