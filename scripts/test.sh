#!/usr/bin/env bash
# The whole test suite: installs what it needs, runs every test, and ends
# with the totals as "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh || { echo "installing test dependencies failed"; echo "0 passed, 1 failed"; exit 1; }
out=$(mktemp)
NO_COLOR=1 deno test -A --quiet "$@" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
summary=$(grep -E '^(ok|FAILED) \| ' "$out" | tail -1)
passed=$(sed -nE 's/.*\| ([0-9]+) passed.*/\1/p' <<<"$summary")
failed=$(sed -nE 's/.*\| ([0-9]+) failed.*/\1/p' <<<"$summary")
rm -f "$out"
if [ -z "$passed" ]; then passed=0; failed=${failed:-1}; [ "$status" = 0 ] && status=1; fi
echo "${passed} passed, ${failed:-0} failed"
exit "$status"
