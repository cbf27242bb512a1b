#!/usr/bin/env bash
# Browser end-to-end tests of the client page (static/): tests/e2e/e2e.mjs in
# Debian's Chromium through playwright-core. Called by `make test-e2e`.
#   WSRELAY  server binary (default $BUILD/plain/wsrelay)
#   B        build dir; screenshots go to $B/e2e/ (default $BUILD/plain)
# Prints the checks and "e2e: N passed, N failed, N skipped"; adds the counts
# to the tally that `make test` sums (see scripts/run-tests.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export WSRELAY=${WSRELAY:-$BUILD/plain/wsrelay}
export B=${B:-$BUILD/plain}
TALLY=${TEST_TALLY:-$BUILD/.test-tally}
mkdir -p "$(dirname "$TALLY")" "$B/e2e"

tally() { echo "e2e $1 $2" >> "$TALLY"; }

if [[ ! -d tests/e2e/node_modules/playwright-core ]]; then
    echo "e2e: installing the pinned playwright-core (npm ci in tests/e2e)" >&2
    if ! (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
        echo "e2e: npm ci failed; run scripts/deps.sh" >&2
        tally 0 1; echo "e2e: 0 passed, 1 failed"; exit 1
    fi
fi

log=$(mktemp)
# The test bounds itself at 55 s; the outer timeout only catches a hung node.
timeout -k 5 70 node tests/e2e/e2e.mjs 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
read -r p f < <(sed -n 's/^e2e: \([0-9]*\) passed, \([0-9]*\) failed.*/\1 \2/p' "$log" | tail -n 1)
rm -f "$log"
if [[ -z ${p:-} ]]; then
    p=0; f=1
    echo "e2e: 0 passed, 1 failed (the test run ended without a summary, exit $rc)"
fi
tally "$p" "$f"
[[ $rc -eq 0 && $f -eq 0 ]]
