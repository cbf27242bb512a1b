#!/usr/bin/env bash
# A short, bounded smoke run of the load generator, used by `make test`:
#   1. wsrelay --port 0 --threads 1; wsload echo for ~2 s against /echo
#      (binary) and /websocket (text, --expect-prefix echo:);
#   2. the raw TCP peer bench/peers/tcp_echo; wsload --raw for ~2 s;
#   3. bench/compare.sh with wsrelay (epoll and io_uring) and tcp_echo, w1 and w2, 1 round of 1 s;
#   and wsload --raw against bench/peers/fault_echo.py: replies in small
#   pieces verify cleanly, one flipped bit is one mismatch with exit 1.
# Each run must exit 0 and report a non-zero msgs_per_s with no errors or
# mismatches in its --json line. Servers are started here and killed by PID.
# Env: B = build dir holding wsrelay, wsload and bench/peers/ (default build/plain).
set -uo pipefail
cd "$(dirname "$0")/.."
B=${B:-build/plain}
WSRELAY=$B/wsrelay
WSLOAD=$B/wsload
TCP_ECHO=$B/bench/peers/tcp_echo
TALLY=${TEST_TALLY:-${BUILD:-build}/.test-tally}
PY=/usr/bin/python3
RUN_SECS=${BENCH_SMOKE_SECS:-2}

source bench/lib.sh   # $tmp, $pids, start()

pass=0; fail=0
ok() { pass=$((pass + 1)); echo "  ok    $*"; }
bad() { fail=$((fail + 1)); echo "  FAIL  $*"; }


stop() { # pid: kill it and forget it, so cleanup never signals a reused PID
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    local keep=() p
    for p in "${pids[@]+"${pids[@]}"}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    pids=("${keep[@]}")
}

# load NAME WSLOAD-ARGS...: one bounded wsload run and its checks.
load() {
    local name=$1; shift
    local cmd=("$WSLOAD" -q --json -d "$RUN_SECS" -w 0.5 "$@")
    echo "  run   ${cmd[*]}"
    timeout -k 5 30 "${cmd[@]}" >"$tmp/load.out" 2>"$tmp/load.err"
    local rc=$?
    local verdict
    verdict=$(tail -n 1 "$tmp/load.out" | $PY -c '
import json, sys
try:
    j = json.loads(sys.stdin.read())
except ValueError:
    print("no JSON line"); sys.exit(1)
if j["errors"] or j["mismatches"] or not j["msgs_per_s"] > 0:
    print("errors %d mismatches %d msgs/s %s" % (j["errors"], j["mismatches"], j["msgs_per_s"])); sys.exit(1)
print("%.0f msg/s, %.2f MB/s, p50 %.1f us, p99 %.1f us" % (j["msgs_per_s"], j["mb_per_s"], j["lat_us"]["p50"], j["lat_us"]["p99"]))
')
    local vrc=$?
    if [[ $rc -eq 0 && $vrc -eq 0 ]]; then
        ok "$name: $verdict"
    else
        bad "$name: exit $rc; $verdict"
        sed 's/^/        /' "$tmp/load.err" | tail -n 10
    fi
}

for prog in "$WSLOAD" "$WSRELAY" "$TCP_ECHO"; do
    if [[ ! -x $prog ]]; then
        bad "missing $prog (build it: make all $TCP_ECHO)"
    fi
done

if [[ -x $WSLOAD && -x $WSRELAY ]]; then
    if start wsrelay "$WSRELAY" --host 127.0.0.1 --port 0 --threads 1; then
        echo "  wsrelay pid $pid on port $port"
        load "wsrelay /echo binary" -c 4 -p 8 -s 64 --server-pid "$pid" "ws://127.0.0.1:$port/echo"
        load "wsrelay /websocket text" -c 4 -p 8 -s 16-512 --text --expect-prefix echo: --server-pid "$pid" \
            "ws://127.0.0.1:$port/websocket"
        stop "$pid"
    else
        bad "wsrelay did not start"
    fi
fi

if [[ -x $WSLOAD && -x $TCP_ECHO ]]; then
    if start tcp_echo "$TCP_ECHO" 0; then
        echo "  tcp_echo pid $pid on port $port"
        load "tcp_echo raw" --raw -c 4 -p 8 -s 64 --server-pid "$pid" "ws://127.0.0.1:$port/echo"
        stop "$pid"
    else
        bad "tcp_echo did not start"
    fi
fi

# wsload's verdicts against a misbehaving raw echo (bench/peers/fault_echo.py).
# Replies split into 1..7-byte pieces must verify cleanly (frame headers and
# payloads cut at every offset: the general path, not the whole-reply one).
# One flipped bit must be exactly one mismatch, named by message and payload
# byte, with exit status 1. On the wire a 32-byte message is 38 bytes (2 +
# 4-byte mask key + 32), so stream offset 500 is message 13, payload byte 0;
# a 70000-byte one has a 14-byte header, so offset 114 is message 0, byte 100.
# fault NAME FAULT-ARGS -- EXPECTED-STDERR-OR-"" WSLOAD-ARGS...
fault() {
    local name=$1 fargs=() want
    shift
    while [[ $1 != -- ]]; do fargs+=("$1"); shift; done
    want=$2
    shift 2
    if ! start fault_echo $PY bench/peers/fault_echo.py "${fargs[@]}"; then
        bad "$name: fault_echo did not start"
        return
    fi
    local cmd=("$WSLOAD" -q --json --raw -d 1 -w 0 "$@" "ws://127.0.0.1:$port/echo")
    echo "  run   fault_echo.py ${fargs[*]}; ${cmd[*]}"
    timeout -k 5 30 "${cmd[@]}" >"$tmp/fault.out" 2>"$tmp/fault.err"
    local rc=$? verdict
    stop "$pid"
    verdict=$(tail -n 1 "$tmp/fault.out" | $PY -c '
import json, sys
want_rc, rc = (1 if sys.argv[1] else 0), int(sys.argv[2])
try:
    j = json.loads(sys.stdin.read())
except ValueError:
    print("no JSON line"); sys.exit(1)
want_mism = 1 if want_rc else 0
if rc != want_rc or j["mismatches"] != want_mism or j["errors"] or (not want_rc and not j["msgs_per_s"] > 0):
    print("exit %d, errors %d, mismatches %d, %.0f msg/s" % (rc, j["errors"], j["mismatches"], j["msgs_per_s"]))
    sys.exit(1)
print("exit %d, mismatches %d, %.0f msg/s" % (rc, j["mismatches"], j["msgs_per_s"]))
' "$want" "$rc")
    local vrc=$?
    if [[ $vrc -eq 0 && -n $want ]] && ! grep -qF "$want" "$tmp/fault.err"; then
        verdict="$verdict; stderr lacks: $want"
        vrc=1
    fi
    if [[ $vrc -eq 0 ]]; then
        ok "$name: $verdict"
    else
        bad "$name: $verdict"
        sed 's/^/        /' "$tmp/fault.err" | tail -n 5
    fi
}

if [[ -x $WSLOAD ]]; then
    fault "raw echo in 1..7-byte pieces" --dribble -- "" -c 2 -p 8 -s 1-300
    fault "one flipped bit, 32 B" --flip 500 -- \
        "message 13 (32 bytes): mismatch at payload byte 0: got 0x" -c 1 -p 4 -s 32
    fault "one flipped bit, 70000 B" --flip 114 -- \
        "message 0 (70000 bytes): mismatch at payload byte 100: got 0x" -c 1 -p 2 -s 70000
fi

# The relay limit (bench/peers/fanout_floor): 10 connections for 1 s must
# report a cost per send, its reader must drain every byte (else exit 1), and
# a bad flag must give exit status 2.
FLOOR_BIN=$B/bench/peers/fanout_floor
if [[ -x $FLOOR_BIN ]]; then
    echo "  run   $FLOOR_BIN -c 10 -d 1 -w 0 --json"
    if out=$(timeout -k 5 30 "$FLOOR_BIN" -c 10 -d 1 -w 0 --json 2>"$tmp/floor.err" | tail -n 1) &&
        verdict=$($PY -c '
import json, sys
j = json.loads(sys.argv[1])
if not (j["sends"] > 0 and j["us_per_send"] > 0 and j["conns"] == 10):
    print("implausible: %s" % sys.argv[1]); sys.exit(1)
print("%.2f us per send, %.4f us per delivery" % (j["us_per_send"], j["us_per_delivery"]))
' "$out"); then
        ok "fanout_floor: $verdict"
    else
        bad "fanout_floor: ${verdict:-no JSON line}"; sed 's/^/        /' "$tmp/floor.err" | tail -n 5
    fi
    "$FLOOR_BIN" -c 0 >/dev/null 2>&1
    rc=$?
    [[ $rc -eq 2 ]] && ok "fanout_floor -c 0: exit 2" || bad "fanout_floor -c 0: exit $rc, want 2"
else
    bad "missing $FLOOR_BIN"
fi

# Micro-benchmarks: a few benchmarks at a tiny min time. Each benchmark checks
# its function against a reference before timing, so an error here is a bug.
MICRO=$B/bench/micro/micro
if [[ -x $MICRO ]]; then
    filter='^(unmask/dispatched/1024|utf8/feed/cjk|session_feed/text/32|http/parse_browser_request)$'
    echo "  run   $MICRO --benchmark_min_time=0.01 --benchmark_filter='$filter'"
    if timeout -k 5 60 "$MICRO" --benchmark_min_time=0.01 --benchmark_filter="$filter" \
            --benchmark_format=json >"$tmp/micro.json" 2>"$tmp/micro.err"; then
        verdict=$($PY -c '
import json, sys
bs = json.load(open(sys.argv[1]))["benchmarks"]
bad = [b["name"] + ": " + b.get("error_message", "") for b in bs if b.get("error_occurred")]
bad += [b["name"] + ": no rate" for b in bs if not b.get("error_occurred")
        and not (b.get("bytes_per_second", 0) > 0 or b.get("items_per_second", 0) > 0)]
if len(bs) != 4 or bad:
    print("%d of 4 benchmarks ran; %s" % (len(bs), "; ".join(bad))); sys.exit(1)
print(", ".join("%s %.3g/s" % (b["name"], b.get("bytes_per_second") or b["items_per_second"]) for b in bs))
' "$tmp/micro.json") && ok "micro: $verdict" || bad "micro: $verdict"
    else
        bad "micro exited non-zero"; tail -n 5 "$tmp/micro.err" | sed 's/^/        /'
    fi
else
    bad "missing $MICRO (make BUILD=... $MICRO)"
fi

# Flame graph: a 2 s profile must give a non-empty HTML page holding wsrelay's
# samples (perf needs root or kernel.perf_event_paranoid <= 1).
if [[ $(id -u) -ne 0 && $(cat /proc/sys/kernel/perf_event_paranoid) -gt 1 ]]; then
    echo "  skip  flamegraph: perf needs root or kernel.perf_event_paranoid <= 1"
elif [[ -x $WSRELAY && -x $WSLOAD ]]; then
    echo "  run   FLAME_SECONDS=2 bench/flamegraph.sh"
    if FLAME_SECONDS=2 FLAME_OUT="$tmp/flame" B=$B timeout -k 5 120 bench/flamegraph.sh \
            >"$tmp/flame.log" 2>&1; then
        html=$tmp/flame/flamegraph.html
        if [[ -s $html ]] && grep -q '"n": "wsrelay' "$html" && [[ -s $tmp/flame/flamegraph.svg ]]; then
            ok "flamegraph: $(stat -c %s "$html") bytes HTML, $(grep -c . "$tmp/flame/stacks.folded") stacks"
        else
            bad "flamegraph: HTML missing, empty or without wsrelay samples"
        fi
    else
        bad "flamegraph.sh failed"; tail -n 10 "$tmp/flame.log" | sed 's/^/        /'
    fi
fi

# 3. bench/compare.sh, shortened: wsrelay on each I/O backend and tcp_echo,
#    w1 and w2, one round of 1 s. It must exit 0, record six successful runs
#    and write a report with a row for each server and no FAIL cell.
if [[ -x $WSLOAD && -x $WSRELAY && -x $TCP_ECHO ]]; then
    echo "  run   DURATION=1 WARMUP=0.5 ROUNDS=1 SERVERS=\"wsrelay_epoll wsrelay_uring tcp_echo\" WORKLOADS=\"w1 w2\" bench/compare.sh"
    B=$B DURATION=1 WARMUP=0.5 ROUNDS=1 SERVERS="wsrelay_epoll wsrelay_uring tcp_echo" WORKLOADS="w1 w2" \
        OUT="$tmp/compare.md" RAW="$tmp/compare.jsonl" timeout -k 5 90 bench/compare.sh >"$tmp/compare.log" 2>&1
    rc=$?
    verdict=$($PY - "$tmp/compare.jsonl" "$tmp/compare.md" <<'EOF_PY'
import json, sys
try:
    runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    report = open(sys.argv[2]).read()
except (OSError, ValueError) as e:
    print("no results: %s" % e); sys.exit(1)
good = [r for r in runs if r["rc"] == 0 and r["result"] and r["result"]["msgs_per_s"] > 0]
rows = [l for l in report.splitlines() if l.startswith("| wsrelay epoll (1 thread) |") or
        l.startswith("| wsrelay io_uring (1 thread) |") or l.startswith("| raw TCP echo")]
if len(runs) != 6 or len(good) != 6 or len(rows) < 3 or "| FAIL" in report:
    print("%d runs, %d good, %d report rows" % (len(runs), len(good), len(rows))); sys.exit(1)
print("; ".join("%s %s %.0f msg/s" % (r["workload"], r["server"], r["result"]["msgs_per_s"]) for r in good))
EOF_PY
)
    vrc=$?
    if [[ $rc -eq 0 && $vrc -eq 0 ]]; then
        ok "compare.sh: $verdict"
    else
        bad "compare.sh: exit $rc; $verdict"
        sed 's/^/        /' "$tmp/compare.log" | tail -n 10
    fi
fi

# Relay benchmarks (bench/relay.sh), scaled down: 50 subscribers, 4 channels;
# the r1 limit row (fanout_floor) must be there too.
if out=$(B=$B DURATION=1 SUBS=50 CHANNELS=4 timeout -k 5 120 bench/relay.sh 2>&1) &&
        [[ $(grep -c '^| r[12] |' <<<"$out") -eq 4 && $(grep -c '^| r1 limit' <<<"$out") -eq 1 ]]; then
    ok "relay.sh: $(grep '^| r[12] |\|^| r1 limit' <<<"$out" | awk -F'|' '{printf "%s/%sw %s/s %s us; ", $2, $3, $4, $6}')"
else
    bad "relay.sh"
    sed 's/^/        /' <<<"$out" | tail -n 10
fi

mkdir -p "$(dirname "$TALLY")"
echo "bench-smoke $pass $fail" >>"$TALLY"
echo "bench-smoke: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
