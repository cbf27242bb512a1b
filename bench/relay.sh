#!/usr/bin/env bash
# Relay benchmarks of issue 7, server pinned apart from the load generators.
#   r1  one publisher and SUBS (1000) subscribers on one channel, 32-byte
#       messages, the publisher keeping up to INFLIGHT (16) messages not yet
#       delivered to everyone (wsload closed-loop relay: -p without -r).
#   r2  CHANNELS (100) channels of MEMBERS (10), every member publishing with
#       the same closed loop: one wsload process per channel.
# For each, with 1 worker (server on CPU 0, wsload on CPU 1) and 2 workers
# (server on both CPUs, wsload on CPU 1): delivered messages/s, delivery
# latency p50/p99 and server CPU µs per delivered message (utime+stime from
# /proc/PID/stat over the measured seconds). Prints a Markdown table; exits 1
# when any wsload run failed or reported an error. After r1 a row "r1 limit"
# gives bench/peers/fanout_floor's figure: the same sends with no relay code,
# what a server making one send per subscriber per window cannot beat here
# (FLOOR=0 leaves it out).
# Env: B (build/plain), DURATION (4), INFLIGHT (16), SUBS (1000),
# CHANNELS (100), MEMBERS (10), WORKERS ("1 2"), RUNS ("r1 r2"), SERVER_ARGS
# (extra wsrelay flags, e.g. "--io epoll").
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build/plain}
DURATION=${DURATION:-4}
INFLIGHT=${INFLIGHT:-16}
SUBS=${SUBS:-1000}
CHANNELS=${CHANNELS:-100}
MEMBERS=${MEMBERS:-10}
WORKERS=${WORKERS:-1 2}
RUNS=${RUNS:-r1 r2}
PY=/usr/bin/python3
tmp=$(mktemp -d)
srv=
cleanup() { [[ -n $srv ]] && kill "$srv" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
ticks=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_server() { # workers
    local cpus=0
    [[ $1 -gt 1 ]] && cpus=0,1
    taskset -c "$cpus" "$B/wsrelay" --host 127.0.0.1 --port 0 --threads "$1" \
        --max-connections 20000 ${SERVER_ARGS:-} >"$tmp/srv.out" 2>"$tmp/srv.err" &
    srv=$!
    for _ in $(seq 100); do grep -q listening "$tmp/srv.out" 2>/dev/null && break; sleep 0.05; done
    port=$(grep -o ':[0-9]* ' "$tmp/srv.out" | head -1 | tr -d ': ')
}

stop_server() { kill "$srv"; wait "$srv" 2>/dev/null || true; srv=; }

failed=0
echo "| run | workers | delivered/s | latency p50 / p99 (ms) | server CPU µs/delivery | wsload errors |"
echo "|---|---|---|---|---|---|"
for run in $RUNS; do
    for wk in $WORKERS; do
        start_server "$wk"
        rm -f "$tmp"/*.json
        if [[ $run == r1 ]]; then
            n=1
            taskset -c 1 "$B/wsload" --mode relay -c $((SUBS + 1)) --publishers 1 -s 32 -p "$INFLIGHT" \
                -d "$DURATION" -w 1 --json -q "ws://127.0.0.1:$port/relay/r1" >"$tmp/0.json" &
            pids=$!
        else
            n=$CHANNELS
            pids=
            for i in $(seq 0 $((n - 1))); do
                taskset -c 1 "$B/wsload" --mode relay -c "$MEMBERS" --publishers "$MEMBERS" -s 32 \
                    -p "$INFLIGHT" -d "$DURATION" -w 1 --json -q \
                    "ws://127.0.0.1:$port/relay/ch$i" >"$tmp/$i.json" &
                pids="$pids $!"
            done
        fi
        sleep 1.2                      # connect + warm-up
        t0=$(cpu_ticks "$srv")
        sleep "$DURATION"
        t1=$(cpu_ticks "$srv")
        fails=0
        for p in $pids; do wait "$p" || fails=$((fails + 1)); done
        stop_server
        $PY - "$tmp" "$n" "$t0" "$t1" "$ticks" "$DURATION" "$run" "$wk" "$fails" <<'PYEOF' || failed=$((failed + 1))
import json, sys, glob, statistics
d, n, t0, t1, tck, dur, run, wk, fails = sys.argv[1:]
rows = []
for f in glob.glob(d + "/*.json"):
    try:
        rows.append(json.loads(open(f).read().strip().splitlines()[-1]))
    except Exception:
        pass
deliv = sum(r["msgs_per_s"] for r in rows)
errs = sum(r.get("errors", 0) + r.get("mismatches", 0) for r in rows) + int(fails)
p50 = statistics.median(r["lat_us"]["p50"] for r in rows) / 1000 if rows else float("nan")
p99 = max(r["lat_us"]["p99"] for r in rows) / 1000 if rows else float("nan")
cpu_us = (int(t1) - int(t0)) / int(tck) * 1e6
per = cpu_us / (deliv * float(dur)) if deliv else float("nan")
print("| %s | %s | %.3gM | %.1f / %.1f | %.3f | %d (%d of %s runs reported) |"
      % (run, wk, deliv / 1e6, p50, p99, per, errs, len(rows), n))
sys.exit(1 if errs or len(rows) != int(n) or deliv <= 0 else 0)
PYEOF
    done
    # The limit of r1 on this machine: the sends alone, one per subscriber per
    # window of INFLIGHT 34-byte frames, with no relay code at all
    # (bench/peers/fanout_floor). Its µs per delivery is sender CPU per frame.
    if [[ $run == r1 && ${FLOOR:-1} != 0 ]]; then
        if out=$(timeout -k 5 $((DURATION + 60)) "$B/bench/peers/fanout_floor" -c "$SUBS" \
                -s $((INFLIGHT * 34)) -f 34 -d "$DURATION" -w 1 --json | tail -n 1) && [[ -n $out ]]; then
            $PY -c '
import json, sys
j = json.loads(sys.argv[1])
print("| r1 limit: sends only (fanout_floor) | 1 | %.3gM | – | %.3f | – |"
      % (j["sends_per_s"] * j["bytes"] / j["frame"] / 1e6, j["us_per_delivery"]))' "$out"
        else
            echo "relay: fanout_floor failed" >&2
            failed=$((failed + 1))
        fi
    fi
done
exit $((failed > 0))
