#!/usr/bin/env bash
# `make bench`: the micro-benchmarks, then a short wsload comparison.
#   1. $B/bench/micro/micro pinned to CPU 1 (when there are 2+ CPUs), results
#      in bench/results/micro-<date>.json; a compact table (median of the
#      repetitions) is printed from that JSON.
#   2. wsrelay --threads 1 (and the raw TCP echo bench/peers/tcp_echo, the
#      physical limit, when built) pinned to CPU 0, driven by wsload pinned to
#      CPU 1: w1 = 32 B text, 100 connections, 1 in flight; w2 = the same with
#      32 in flight. Servers are interleaved round by round; medians of msgs/s
#      and server CPU us/msg are printed.
# Env: B build dir (default build/plain); MICRO_REPS (3), MICRO_MIN_TIME (0.2 s),
# MICRO_FILTER (regex, default all); LOAD_SECS (3), LOAD_ROUNDS (3),
# LOAD_SERVERS ("wsrelay tcp_echo"); SKIP_MICRO=1 / SKIP_LOAD=1.
# Servers are started here and killed by PID only.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build/plain}
PY=/usr/bin/python3
MICRO=$B/bench/micro/micro
WSRELAY=$B/wsrelay
WSLOAD=$B/wsload
TCP_ECHO=$B/bench/peers/tcp_echo
RESULTS=bench/results
MICRO_REPS=${MICRO_REPS:-3}
MICRO_MIN_TIME=${MICRO_MIN_TIME:-0.2}
MICRO_FILTER=${MICRO_FILTER:-}
LOAD_SECS=${LOAD_SECS:-3}
LOAD_ROUNDS=${LOAD_ROUNDS:-3}
LOAD_SERVERS=${LOAD_SERVERS:-wsrelay tcp_echo}

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
ncpu=$(nproc)
if ((ncpu >= 2)); then
    PIN_SERVER=(taskset -c 0)
    PIN_LOAD=(taskset -c 1)
else
    PIN_SERVER=()
    PIN_LOAD=()
fi
stamp=$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$RESULTS"

echo "== machine: ${cpu_model:-unknown CPU}, $ncpu CPUs, kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"

source bench/lib.sh   # $tmp, $pids, start()

# ---- 1. micro-benchmarks -------------------------------------------------------
if [[ ${SKIP_MICRO:-0} != 1 ]]; then
    [[ -x $MICRO ]] || { echo "bench: missing $MICRO (make BUILD=... $MICRO)" >&2; exit 1; }
    json=$RESULTS/micro-$stamp.json
    cmd=("${PIN_LOAD[@]}" "$MICRO" "--benchmark_out=$json" --benchmark_out_format=json
         "--benchmark_repetitions=$MICRO_REPS" --benchmark_report_aggregates_only=true
         "--benchmark_min_time=$MICRO_MIN_TIME")
    [[ -n $MICRO_FILTER ]] && cmd+=("--benchmark_filter=$MICRO_FILTER")
    echo "== micro-benchmarks: ${cmd[*]}"
    "${cmd[@]}" >"$RESULTS/micro-$stamp.txt" 2>&1 || {
        echo "bench: micro-benchmarks failed:" >&2; tail -n 20 "$RESULTS/micro-$stamp.txt" >&2; exit 1; }
    # The table: median of the repetitions (the only run when MICRO_REPS=1),
    # rates from CPU time as Google Benchmark computes them; GB = 1e9 bytes.
    $PY - "$json" "$MICRO_REPS" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
rows, order = {}, []
for b in doc["benchmarks"]:
    name = b.get("run_name", b["name"])
    if name not in rows:
        rows[name] = {}
        order.append(name)
    r = rows[name]
    if b.get("error_occurred"):
        r["error"] = b.get("error_message", "error")
        continue
    agg = b.get("aggregate_name", "")
    if agg in ("", "median"):
        r["med"] = b
    elif agg == "cv":
        r["cv"] = b
print("%-34s %12s %14s %6s" % ("benchmark", "GB/s", "M items/s", "cv%"))
for name in order:
    r = rows[name]
    if "error" in r:
        print("%-34s %s" % (name, "skipped: " + r["error"]))
        continue
    m = r.get("med")
    if m is None:
        continue
    bps = m.get("bytes_per_second")
    ips = m.get("items_per_second")
    cv = r.get("cv", {}).get("cpu_time")
    print("%-34s %12s %14s %6s" % (
        name,
        "%.2f" % (bps / 1e9) if bps else "-",
        "%.2f" % (ips / 1e6) if ips else "-",
        "%.1f" % (cv * 100) if cv is not None else "-"))
ctx = doc.get("context", {})
print("(median of %s repetitions, rates from CPU time; ws_unmask bound to %s; CPU %s)" % (
    sys.argv[2], ctx.get("ws_unmask_impl", "?"), ctx.get("cpu_model", "?")))
EOF
    echo "   JSON: $json  console: $RESULTS/micro-$stamp.txt"
fi

# ---- 2. wsload comparison ------------------------------------------------------
[[ ${SKIP_LOAD:-0} == 1 ]] && exit 0
for prog in "$WSLOAD" "$WSRELAY"; do
    [[ -x $prog ]] || { echo "bench: missing $prog (make all)" >&2; exit 1; }
done


stop() { # pid: kill it and forget it
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    local keep=() p
    for p in "${pids[@]+"${pids[@]}"}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    pids=("${keep[@]+"${keep[@]}"}")
}

declare -A WORKLOAD=(
    [w1]="-c 100 -p 1 -s 32 --text"
    [w2]="-c 100 -p 32 -s 32 --text"
)
servers=()
for s in $LOAD_SERVERS; do
    case $s in
    wsrelay) servers+=(wsrelay) ;;
    tcp_echo) if [[ -x $TCP_ECHO ]]; then servers+=(tcp_echo); else
                  echo "   (skipping tcp_echo: $TCP_ECHO not built)"; fi ;;
    *) echo "bench: unknown server $s" >&2; exit 2 ;;
    esac
done

echo "== wsload: ${LOAD_SECS}s per run after 1 s warm-up, $LOAD_ROUNDS rounds, server ${PIN_SERVER[*]:-unpinned}, wsload ${PIN_LOAD[*]:-unpinned}"
: >"$tmp/results"
for round in $(seq "$LOAD_ROUNDS"); do
    for s in "${servers[@]}"; do
        case $s in
        wsrelay) start wsrelay "${PIN_SERVER[@]}" "$WSRELAY" --host 127.0.0.1 --port 0 --threads 1 \
                     --log-level warn; extra=() ;;
        tcp_echo) start tcp_echo "${PIN_SERVER[@]}" "$TCP_ECHO" 0; extra=(--raw) ;;
        esac
        for w in w1 w2; do
            # shellcheck disable=SC2206 # the workload is a word list on purpose
            cmd=("${PIN_LOAD[@]}" "$WSLOAD" -q --json -d "$LOAD_SECS" -w 1 ${WORKLOAD[$w]} "${extra[@]}"
                 --server-pid "$pid" "ws://127.0.0.1:$port/echo")
            ((round == 1)) && echo "   $s $w: ${cmd[*]}"
            line=$(timeout -k 5 $((LOAD_SECS + 30)) "${cmd[@]}" 2>"$tmp/load.err" | tail -n 1) || true
            echo "$s $w $line" >>"$tmp/results"
        done
        stop "$pid"
    done
done

$PY - "$tmp/results" <<'EOF'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    server, wl, rest = (line.rstrip("\n").split(" ", 2) + [""])[:3]
    try:
        j = json.loads(rest)
        ok = not j["errors"] and not j["mismatches"] and j["msgs_per_s"] > 0
    except (ValueError, KeyError):
        j, ok = None, False
    runs.setdefault((server, wl), []).append(j if ok else None)
print("%-10s %-4s %14s %18s %10s %6s" % ("server", "load", "msgs/s", "server CPU us/msg", "p99 us", "runs"))
for (server, wl), js in runs.items():
    good = [j for j in js if j]
    if not good:
        print("%-10s %-4s %14s" % (server, wl, "FAILED (%d runs)" % len(js)))
        continue
    mps = statistics.median(j["msgs_per_s"] for j in good)
    cpu = [j["server_cpu_us_per_msg"] for j in good if j.get("server_cpu_us_per_msg") is not None]
    p99 = statistics.median(j["lat_us"]["p99"] for j in good)
    print("%-10s %-4s %14.0f %18s %10.1f %6s" % (
        server, wl, mps, "%.3f" % statistics.median(cpu) if cpu else "-", p99,
        "%d/%d" % (len(good), len(js))))
print("(medians; w1 = 32 B text, 100 conns, 1 in flight; w2 = 32 in flight; tcp_echo is raw TCP, no WebSocket work)")
EOF
