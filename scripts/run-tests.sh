#!/usr/bin/env bash
# Run a group of test programs and print "GROUP: N passed, N failed".
#   run-tests.sh GROUP PROG...          programs, pass = exit 0
#   run-tests.sh GROUP --pairs          "PROG CORPUS_DIR" lines on stdin
#   run-tests.sh GROUP --py FILE...     Python tests run with Debian's python3
#   run-tests.sh --total                sum of the groups run since the last --total
set -uo pipefail
TALLY=${TEST_TALLY:-${BUILD:-build}/.test-tally}
TIMEOUT=${TEST_TIMEOUT:-600}
mkdir -p "$(dirname "$TALLY")"

if [[ ${1:-} == --total ]]; then
    read -r p f < <(awk '{p += $2; f += $3} END {print p+0, f+0}' "$TALLY" 2>/dev/null || echo "0 0")
    rm -f "$TALLY"
    echo "total: ${p:-0} passed, ${f:-0} failed"
    [[ ${f:-0} -eq 0 && ${p:-0} -gt 0 ]]
    exit
fi

group=$1; shift
pass=0; fail=0; failed=()
run_one() { # name, command...
    local name=$1; shift
    local log; log=$(mktemp)
    local rc=0
    timeout -k 10 "$TIMEOUT" "$@" >"$log" 2>&1 || rc=$?
    if [[ $rc -eq 0 ]]; then
        pass=$((pass + 1)); echo "  ok    $name"
    else
        fail=$((fail + 1)); failed+=("$name"); echo "  FAIL  $name (exit $rc)"
        tail -n 40 "$log" | sed 's/^/        /'
    fi
    rm -f "$log"
}

case ${1:-} in
--pairs)
    while read -r prog dir; do run_one "${prog##*/}" "$prog" "$dir"; done ;;
--py)
    shift
    for t in "$@"; do [[ -f $t ]] && run_one "${t##*/}" /usr/bin/python3 "$t"; done ;;
*)
    for t in "$@"; do run_one "${t##*/}" "$t"; done ;;
esac
echo "$group $pass $fail" >> "$TALLY"
echo "$group: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
