#!/usr/bin/env bash
# `make flamegraph`: profile wsrelay under echo load and draw flame graphs.
#   wsrelay --threads 1 pinned to CPU 0; wsload pinned to CPU 1 on /echo with
#   100 connections, 32 messages in flight each, 32-byte payloads; after 1 s of
#   warm-up, `perf record -e cpu-clock -F 999 --call-graph dwarf -p PID` for
#   FLAME_SECONDS (10). cpu-clock because hardware counters are unavailable in
#   this VM; dwarf because it also unwinds libc, which has no frame pointers.
# Writes under $B/flamegraph/ (B: build dir, default build/plain; FLAME_OUT
# overrides the folder):
#   perf.data, flamegraph.html (perf's own `perf script report flamegraph`,
#   filled into the d3-flame-graph template pinned in bench/flamegraph/),
#   stacks.folded and flamegraph.svg (bench/flamegraph/flame.py), top.txt
#   (functions by self samples). Servers are started here and killed by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
B=${B:-build/plain}
FLAME_SECONDS=${FLAME_SECONDS:-10}
PY=/usr/bin/python3
WSRELAY=$B/wsrelay
WSLOAD=$B/wsload
OUT=${FLAME_OUT:-$B/flamegraph}
TEMPLATE=$ROOT/bench/flamegraph/node_modules/d3-flame-graph/dist/templates/d3-flamegraph-base.html
FLAME=$ROOT/bench/flamegraph/flame.py

for prog in "$WSRELAY" "$WSLOAD"; do
    [[ -x $prog ]] || { echo "flamegraph: missing $prog (make all)" >&2; exit 1; }
done
command -v perf >/dev/null || { echo "flamegraph: perf not found (scripts/deps.sh installs linux-perf)" >&2; exit 1; }
[[ -f $TEMPLATE ]] || { echo "flamegraph: missing $TEMPLATE (run scripts/deps.sh)" >&2; exit 1; }
if [[ $(id -u) -ne 0 && $(cat /proc/sys/kernel/perf_event_paranoid) -gt 1 ]]; then
    echo "flamegraph: perf needs root or kernel.perf_event_paranoid <= 1" >&2
    exit 1
fi
if (($(nproc) >= 2)); then
    PIN_SERVER=(taskset -c 0)
    PIN_LOAD=(taskset -c 1)
else
    PIN_SERVER=()
    PIN_LOAD=()
fi

mkdir -p "$OUT"
rm -f "$OUT"/perf.data "$OUT"/perf.data.old "$OUT"/flamegraph.html "$OUT"/flamegraph.svg \
      "$OUT"/stacks.folded "$OUT"/top.txt
source bench/lib.sh   # $tmp, $pids, start()

start srv "${PIN_SERVER[@]}" "$WSRELAY" --host 127.0.0.1 --port 0 --threads 1 --log-level warn || exit 1
srv=$pid

load=("${PIN_LOAD[@]}" "$WSLOAD" -q --json -c 100 -p 32 -s 32 -w 1 -d "$((FLAME_SECONDS + 1))"
      --server-pid "$srv" "ws://127.0.0.1:$port/echo")
rec=(perf record -e cpu-clock -F 999 --call-graph dwarf -p "$srv" -o "$OUT/perf.data" -- sleep "$FLAME_SECONDS")
echo "== cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== server: ${PIN_SERVER[*]} $WSRELAY --host 127.0.0.1 --port 0 --threads 1 (pid $srv, port $port)"
echo "== load:   ${load[*]}"
"${load[@]}" >"$tmp/load.out" 2>"$tmp/load.err" &
ld=$!
pids+=("$ld")
sleep 1 # the warm-up: connections open, steady state reached
echo "== record: ${rec[*]}"
"${rec[@]}" 2>"$tmp/perf.err" || { echo "flamegraph: perf record failed:" >&2; cat "$tmp/perf.err" >&2; exit 1; }
grep -h 'Captured' "$tmp/perf.err" | sed 's/^/   /' || true
load_rc=0
wait "$ld" || load_rc=$?
pids=("$srv")
kill "$srv" 2>/dev/null && wait "$srv" 2>/dev/null || true
pids=()
tail -n 1 "$tmp/load.out" | $PY -c '
import json, sys
try:
    j = json.loads(sys.stdin.read())
except ValueError:
    print("   wsload: no JSON result"); sys.exit(0)
cpu = j.get("server_cpu_us_per_msg")
print("   wsload: %.0f msgs/s, errors %d, mismatches %d, server CPU %s us/msg" % (
    j["msgs_per_s"], j["errors"], j["mismatches"], "%.3f" % cpu if cpu is not None else "?"))
' || true
((load_rc == 0)) || echo "   (wsload exited $load_rc; the profile is still usable)"

# perf's flamegraph script reads ./perf.data and `perf report --header-only`
# for the page's context box, so run it from $OUT.
(cd "$OUT" && perf script report flamegraph --template "$TEMPLATE" -o flamegraph.html \
    >"$tmp/fg.out" 2>"$tmp/fg.err") ||
    { echo "flamegraph: perf script report flamegraph failed:" >&2; tail -n 5 "$tmp/fg.err" >&2; exit 1; }

perf script -i "$OUT/perf.data" -F comm,pid,tid,ip,sym,dso 2>/dev/null | $PY "$FLAME" collapse >"$OUT/stacks.folded"
$PY "$FLAME" svg --title "wsrelay /echo, 100 conns x 32 in flight, 32 B, ${FLAME_SECONDS}s cpu-clock" \
    <"$OUT/stacks.folded" >"$OUT/flamegraph.svg"
$PY "$FLAME" top -n 15 <"$OUT/stacks.folded" >"$OUT/top.txt"

echo "== top self time:"
sed 's/^/   /' "$OUT/top.txt"
echo "== outputs:"
for f in flamegraph.html flamegraph.svg stacks.folded top.txt perf.data; do
    printf '   %-16s %s (%s bytes)\n' "$f" "$OUT/$f" "$(stat -c %s "$OUT/$f")"
done
