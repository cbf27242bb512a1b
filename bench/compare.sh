#!/usr/bin/env bash
# Side-by-side comparison of wsrelay and the echo servers a user would
# otherwise pick (bench/peers/), under the same wsload workloads:
#   w1  32 B text, 100 connections, 1 in flight        msgs/s, server CPU us/msg
#   w2  32 B text, 100 connections, 32 in flight       msgs/s, server CPU us/msg
#   w3  64 KiB binary, 10 connections, 2 in flight     msgs/s, MB/s, server CPU us/msg
#   w4  IDLE_CONNS idle connections                    server RSS bytes per connection
#   w5  32 B text, 100 connections, open loop at RATE  p99 latency (and the rate reached)
# The server runs pinned to CPU 0 and wsload to CPU 1 (taskset). Each server
# is started fresh for each run (port 0, "listening on HOST:PORT" read from
# its stdout) and killed by its PID afterwards. Runs are interleaved:
#   for round: for workload: for server
# so every round sees every server, and the same workload on different
# servers runs close together in time. The report quotes the median of the
# rounds (with min-max) and writes OUT (default bench/RESULTS.md).
#
# Env:
#   B          build dir with wsrelay, wsload, bench/peers/ (default build/plain)
#   DURATION   measured seconds per run (default 5); WARMUP (default 1)
#   ROUNDS     rounds (default 3)
#   SERVERS    subset of: wsrelay wsrelay_epoll wsrelay_uring lws node_ws py_websockets
#              bottle_gevent tcp_echo (wsrelay: its default I/O backend; the
#              other two force --io epoll / --io uring)
#   WORKLOADS  subset of: w1 w2 w3 w4 w5
#   IDLE_CONNS connections for w4 (default 10000); RATE for w5 (default 50000)
#   OUT        report path (default bench/RESULTS.md); RAW keeps the JSON lines
#              (default $B/compare-raw.jsonl) and RAW.meta the run's facts
#   REPORT_ONLY=1  no runs: rewrite OUT from an earlier run's RAW and RAW.meta
# Smoke: DURATION=1 ROUNDS=1 SERVERS="wsrelay tcp_echo" WORKLOADS="w1 w2" OUT=/tmp/r.md bench/compare.sh
# Exit status: 0 when every run succeeded, 1 when any failed (the report is
# written either way and marks the failures), 2 on bad usage or missing
# programs.
set -uo pipefail
cd "$(dirname "$0")/.."

B=${B:-build/plain}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-3}
SERVERS=${SERVERS:-wsrelay_epoll wsrelay_uring lws node_ws py_websockets bottle_gevent tcp_echo}
WORKLOADS=${WORKLOADS:-w1 w2 w3 w4 w5}
IDLE_CONNS=${IDLE_CONNS:-10000}
RATE=${RATE:-50000}
OUT=${OUT:-bench/RESULTS.md}
RAW=${RAW:-$B/compare-raw.jsonl}
PY=/usr/bin/python3
SERVER_CPU=0
CLIENT_CPU=1
WSLOAD=$B/wsload

# 10,000 idle connections need more descriptors than the usual soft limit;
# the raised limit is inherited by every server and wsload started below.
ulimit -n "$(ulimit -Hn)" 2>/dev/null

# ---- servers -----------------------------------------------------------------
# server_cmd NAME: the command line (without taskset) that starts NAME on port 0.
server_cmd() {
    case $1 in
    wsrelay) echo "$B/wsrelay --host 127.0.0.1 --port 0 --threads 1 --max-connections $((IDLE_CONNS + 1000)) --log-level warn" ;;
    wsrelay_epoll) echo "$(server_cmd wsrelay) --io epoll" ;;
    wsrelay_uring) echo "$(server_cmd wsrelay) --io uring" ;;
    lws) echo "$B/bench/peers/lws_echo 0" ;;
    node_ws) echo "node bench/peers/node/echo.js 0" ;;
    py_websockets) echo "$PY bench/peers/py_websockets_echo.py 0" ;;
    bottle_gevent) echo "$PY bench/peers/bottle_gevent_echo.py 0" ;;
    tcp_echo) echo "$B/bench/peers/tcp_echo 0" ;;
    *) return 1 ;;
    esac
}

# workload_args NAME: wsload's arguments for a workload (no URL, no PID).
workload_args() {
    case $1 in
    w1) echo "-c 100 -p 1 -s 32 --text -d $DURATION -w $WARMUP" ;;
    w2) echo "-c 100 -p 32 -s 32 --text -d $DURATION -w $WARMUP" ;;
    w3) echo "-c 10 -p 2 -s 64K --binary -d $DURATION -w $WARMUP" ;;
    w4) echo "--mode idle -c $IDLE_CONNS -d 1 --settle 2" ;;
    w5) echo "-c 100 -r $RATE -s 32 --text -d $DURATION -w $WARMUP" ;;
    *) return 1 ;;
    esac
}

for s in $SERVERS; do
    server_cmd "$s" >/dev/null || { echo "compare: unknown server $s" >&2; exit 2; }
done
for w in $WORKLOADS; do
    workload_args "$w" >/dev/null || { echo "compare: unknown workload $w" >&2; exit 2; }
done
need=("$WSLOAD")
for s in $SERVERS; do
    case $s in
    wsrelay*) need+=("$B/wsrelay") ;;
    lws) need+=("$B/bench/peers/lws_echo") ;;
    tcp_echo) need+=("$B/bench/peers/tcp_echo") ;;
    node_ws) [[ ${REPORT_ONLY:-0} == 1 || -d bench/peers/node/node_modules/ws ]] || { echo "compare: run scripts/deps.sh (npm ci in bench/peers/node)" >&2; exit 2; } ;;
    esac
done
[[ ${REPORT_ONLY:-0} == 1 ]] && need=()
for p in "${need[@]+"${need[@]}"}"; do
    [[ -x $p ]] || { echo "compare: missing $p (make BUILD=... all ${B}/bench/peers/lws_echo ${B}/bench/peers/tcp_echo)" >&2; exit 2; }
done
command -v taskset >/dev/null || { echo "compare: taskset missing (util-linux)" >&2; exit 2; }

tmp=$(mktemp -d)
srv_pid=
cleanup() {
    if [[ -n $srv_pid ]]; then kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME: start the server on CPU 0; sets srv_pid and port. Returns 1 when
# it did not report a port within 15 s.
# Each start gets fresh output files: the child opens (truncates) them after
# the fork, so a reused name could still show the last server's port here.
nstart=0
start() {
    local cmd
    cmd=$(server_cmd "$1")
    nstart=$((nstart + 1))
    srv_out=$tmp/srv.$nstart.out
    srv_err=$tmp/srv.$nstart.err
    # shellcheck disable=SC2086 # the command is split on spaces on purpose
    taskset -c "$SERVER_CPU" $cmd >"$srv_out" 2>"$srv_err" &
    srv_pid=$!
    port=
    for _ in $(seq 150); do
        port=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$srv_out" 2>/dev/null | head -n1)
        [[ -n $port ]] && return 0
        kill -0 "$srv_pid" 2>/dev/null || break
        sleep 0.1
    done
    return 1
}

# stop: SIGTERM our server, wait for it (SIGKILL after 10 s), then wait for
# its port to leave the LISTEN table.
stop() {
    [[ -n $srv_pid ]] || return 0
    kill "$srv_pid" 2>/dev/null
    for _ in $(seq 100); do
        kill -0 "$srv_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$srv_pid" 2>/dev/null
    wait "$srv_pid" 2>/dev/null
    srv_pid=
    if [[ -n ${port:-} ]]; then
        for _ in $(seq 50); do
            [[ -z $(ss -Htln "sport = :$port" 2>/dev/null) ]] && break
            sleep 0.1
        done
    fi
}

# record ROUND WORKLOAD SERVER RC JSON|"" NOTE: one line of the raw file, with
# the 1-minute load average at the end of the run.
record() {
    $PY - "$@" >>"$RAW" <<'EOF'
import json, sys
r, w, s, rc, js, note = sys.argv[1:7]
load1 = float(open("/proc/loadavg").read().split()[0])
try:
    res = json.loads(js) if js else None
except ValueError:
    res = None
print(json.dumps({"round": int(r), "workload": w, "server": s, "rc": int(rc), "result": res, "note": note,
                  "load1": load1}))
EOF
}

# measure: every round, workload and server; appends to RAW, writes RAW.meta.
measure() {
    mkdir -p "$(dirname "$RAW")"
    : >"$RAW"
    loads=()
    started=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
    for ((r = 1; r <= ROUNDS; r++)); do
        loads+=("round $r start: $(cut -d' ' -f1-3 /proc/loadavg)")
        echo "== round $r/$ROUNDS (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
        for w in $WORKLOADS; do
            for s in $SERVERS; do
                if ! start "$s"; then
                    note="server did not start: $(tail -n 2 "$srv_err" | tr '\n' ' ')"
                    echo "   $w $s: FAIL $note" >&2
                    record "$r" "$w" "$s" 99 "" "$note"
                    fails=$((fails + 1))
                    stop
                    continue
                fi
                raw=()
                [[ $s == tcp_echo ]] && raw=(--raw)
                # shellcheck disable=SC2046 # workload args are split on purpose
                cmd=(taskset -c "$CLIENT_CPU" "$WSLOAD" -q --json "${raw[@]}" $(workload_args "$w")
                     --server-pid "$srv_pid" "ws://127.0.0.1:$port/echo")
                timeout -k 5 "$(awk -v d="$DURATION" -v w="$WARMUP" 'BEGIN { print int(d + w + 90) }')" \
                    "${cmd[@]}" >"$tmp/load.out" 2>"$tmp/load.err"
                rc=$?
                js=$(grep '^{' "$tmp/load.out" | tail -n 1)
                note=
                if [[ $rc -ne 0 ]]; then
                    note=$(grep -v '^wsload: conn [0-9]*:' "$tmp/load.err" | tail -n 2 | tr '\n' ' ')
                    first=$(grep -m1 '^wsload: conn [0-9]*:' "$tmp/load.err" | sed 's/^wsload: conn [0-9]*: //')
                    [[ -n $first ]] && note="$note first error: $first"
                    if kill -0 "$srv_pid" 2>/dev/null; then
                        [[ -n $(ss -Htln "sport = :$port" 2>/dev/null) ]] || note="$note (port $port: no listener)"
                    else
                        note="$note (server died)"
                    fi
                    err=$(tail -n 2 "$srv_err" | tr '\n' ' ')
                    [[ -n $err ]] && note="$note server stderr: $err"
                    fails=$((fails + 1))
                fi
                record "$r" "$w" "$s" "$rc" "$js" "$note"
                echo "   $w $s: rc $rc ${js:0:160}" >&2
                stop
            done
        done
        loads+=("round $r end: $(cut -d' ' -f1-3 /proc/loadavg)")
    done
    finished=$(date -u '+%Y-%m-%d %H:%M:%S UTC')

    # ---- report --------------------------------------------------------------------
    ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
    {
        echo "started=$started"
        echo "finished=$finished"
        echo "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n1)"
        echo "cores=$(nproc)"
        echo "kernel=$(uname -sr)"
        echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
        echo "duration=$DURATION"
        echo "warmup=$WARMUP"
        echo "rounds=$ROUNDS"
        echo "rate=$RATE"
        echo "idle_conns=$IDLE_CONNS"
        echo "nofile=$(ulimit -n)"
        echo "v_lws=libwebsockets $(ver libwebsockets-dev)"
        echo "v_node=node $(node --version 2>/dev/null), ws $(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' bench/peers/node/node_modules/ws/package.json 2>/dev/null | head -n1)"
        echo "v_py=python $($PY -c 'import platform; print(platform.python_version())'), websockets $(ver python3-websockets)"
        echo "v_bottle=bottle $(ver python3-bottle), gevent $(ver python3-gevent), gevent-websocket $(ver python3-gevent-websocket)"
        for l in "${loads[@]}"; do echo "load=$l"; done
        for s in $SERVERS; do echo "cmd_$s=taskset -c $SERVER_CPU $(server_cmd "$s")"; done
        for w in $WORKLOADS; do echo "wl_$w=taskset -c $CLIENT_CPU $WSLOAD -q --json $(workload_args "$w") --server-pid PID ws://127.0.0.1:PORT/echo"; done
        echo "servers=$SERVERS"
        echo "workloads=$WORKLOADS"
    } >"$tmp/meta"
    cp "$tmp/meta" "$RAW.meta"
}

fails=0
if [[ ${REPORT_ONLY:-0} == 1 ]]; then
    [[ -f $RAW && -f $RAW.meta ]] || { echo "compare: REPORT_ONLY needs $RAW and $RAW.meta" >&2; exit 2; }
    cp "$RAW.meta" "$tmp/meta"
else
    measure
fi
mkdir -p "$(dirname "$OUT")"
# Text after the end marker in an existing OUT (notes, other engineers'
# sections) is written by hand: keep it.
MARK='<!-- end of bench/compare.sh output; text below is kept on re-runs -->'
kept=
[[ -f $OUT ]] && kept=$(sed -n "\|^$MARK\$|,\$p" "$OUT" | tail -n +2)
$PY - "$tmp/meta" "$RAW" >"$tmp/report.md" <<'EOF'
import json, statistics, sys

meta, loads, cmds, wls = {}, [], {}, {}
for line in open(sys.argv[1]):
    k, _, v = line.rstrip("\n").partition("=")
    if k == "load":
        loads.append(v)
    elif k.startswith("cmd_"):
        cmds[k[4:]] = v
    elif k.startswith("wl_"):
        wls[k[3:]] = v
    else:
        meta[k] = v
runs = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
servers = meta["servers"].split()
workloads = meta["workloads"].split()
rate = float(meta["rate"])
idle = int(meta["idle_conns"])
LABEL = {"wsrelay": "wsrelay (1 thread)", "wsrelay_epoll": "wsrelay epoll (1 thread)",
         "wsrelay_uring": "wsrelay io_uring (1 thread)", "lws": "libwebsockets", "node_ws": "Node ws",
         "py_websockets": "Python websockets", "bottle_gevent": "Bottle + gevent-websocket",
         "tcp_echo": "raw TCP echo (limit)"}
DESC = {"w1": "32 B text, 100 connections, 1 in flight",
        "w2": "32 B text, 100 connections, 32 in flight",
        "w3": "64 KiB binary, 10 connections, 2 in flight",
        "w4": "%d idle connections, server RSS growth / connections" % idle,
        "w5": "32 B text, 100 connections, open loop at %d msgs/s" % rate}


def failed(run):
    """Why a run does not count, or None."""
    res = run["result"]
    if run["rc"] != 0 or res is None:
        return run["note"].strip() or "exit %d" % run["rc"]
    if res["errors"] or res["mismatches"]:
        return "errors %d, mismatches %d" % (res["errors"], res["mismatches"])
    if run["workload"] == "w4" and res["connections"] < idle:
        return "%d of %d connections opened" % (res["connections"], idle)
    return None


def cell(w, s):
    """Per-(workload, server) good runs and failure notes."""
    good, bad = [], []
    for run in runs:
        if run["workload"] == w and run["server"] == s:
            why = failed(run)
            if why:
                bad.append("round %d: %s" % (run["round"], why))
            else:
                good.append(run["result"])
    return good, bad


def load_of(w, s):
    """Median 1-minute load average at the end of the (workload, server) runs."""
    return statistics.median([run.get("load1", 0.0) for run in runs if run["workload"] == w and run["server"] == s])


def busy(res):
    """The server's CPU use during the run, in cores (None without a PID)."""
    us = res.get("server_cpu_us_per_msg")
    return None if us is None else us * res["msgs_per_s"] / 1e6


def saturated(good):
    """w5: the server fell short of the offered rate or used a whole core."""
    b = med([busy(r) for r in good])
    return med([r["msgs_per_s"] for r in good]) < 0.95 * rate or (b is not None and b >= 0.9)


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, kind):
    if v is None:
        return "n/a"
    if kind == "rate":
        return "%.2fM" % (v / 1e6) if v >= 1e6 else "%.0fk" % (v / 1e3) if v >= 1e4 else "%.0f" % v
    if kind == "us":
        return "%.3f" % v if v < 1 else "%.2f" % v if v < 100 else "%.0f" % v
    if kind == "mb":
        return "%.0f" % v if v >= 100 else "%.1f" % v
    if kind == "bytes":
        return "%.0f" % v
    if kind == "lat":
        return "%.0f" % v if v >= 100 else "%.1f" % v
    return str(v)


METRICS = {  # workload: [(header, key, kind)]
    "w1": [("w1 msgs/s", "msgs_per_s", "rate"), ("w1 µs/msg", "server_cpu_us_per_msg", "us")],
    "w2": [("w2 msgs/s", "msgs_per_s", "rate"), ("w2 µs/msg", "server_cpu_us_per_msg", "us")],
    "w3": [("w3 MB/s", "mb_per_s", "mb"), ("w3 µs/msg", "server_cpu_us_per_msg", "us")],
    "w4": [("w4 B/idle conn", "rss_per_conn_bytes", "bytes")],
    "w5": [("w5 p99 µs", "p99", "lat")],
}


def value(res, key):
    if key == "p99":
        return res["lat_us"]["p99"]
    return res.get(key)


def spread(vals, kind):
    vals = [v for v in vals if v is not None]
    if len(vals) < 2:
        return ""
    return " (%s–%s)" % (fmt(min(vals), kind), fmt(max(vals), kind))


out = []
p = out.append
p("# wsrelay side by side with the peers")
p("")
p("Generated by `bench/compare.sh`; re-running it rewrites everything above the end marker. Medians of %s rounds of %s s "
  "(after %s s warm-up); rounds interleave the servers (for round: for workload: for server), each "
  "server started fresh per run and pinned to CPU 0, wsload pinned to CPU 1."
  % (meta["rounds"], meta["duration"], meta["warmup"]))
p("")
p("- Machine: %s, %s cores, %s; run %s to %s; wsrelay commit %s; `ulimit -n` %s."
  % (meta["cpu"], meta["cores"], meta["kernel"], meta["started"], meta["finished"], meta["commit"], meta["nofile"]))
p("- Load average (1/5/15 min): " + "; ".join(loads) + ".")
p("- Peers: %s; %s; %s; %s." % (meta["v_lws"], meta["v_node"], meta["v_py"], meta["v_bottle"]))
p("")
p("## Summary (medians)")
p("")
p("µs/msg is the server's CPU time (user + system, from /proc/PID/stat) per echoed message; "
  "B/idle conn is the growth of the server's RSS divided by the connections held (user-space memory only: "
  "kernel socket buffers are not in RSS); w5 p99 counts from each message's intended send time. "
  "FAIL means no round succeeded (see Failures).")
p("")
heads = ["server"] + [h for w in workloads for (h, _, _) in METRICS[w]]
p("| " + " | ".join(heads) + " |")
p("|" + "---|" * len(heads))
for s in servers:
    row = [LABEL.get(s, s)]
    for w in workloads:
        good, bad = cell(w, s)
        for (_, key, kind) in METRICS[w]:
            if not good:
                row.append("FAIL")
                continue
            v = fmt(med([value(r, key) for r in good]), kind)
            if bad:
                v += " (%d/%d ok)" % (len(good), len(good) + len(bad))
            if w == "w5" and saturated(good):
                v += " sat."
            row.append(v)
    p("| " + " | ".join(row) + " |")
p("")
if "w5" in workloads:
    p("`sat.`: in w5 the server answered under 95%% of the offered %d msgs/s or was busy 90%% of a core or "
      "more: it is at its limit there, so its p99 is mostly queueing delay, not service time." % rate)
    p("")
ref = next((r for r in ("wsrelay", "wsrelay_uring", "wsrelay_epoll") if r in servers), None)
if ref:
    p("## %s relative to each other server (median over median)" % LABEL[ref])
    p("")
    p("Throughput ratio > 1 and CPU/memory/latency ratio < 1 favour %s." % LABEL[ref])
    p("")
    cols = []
    for w in workloads:
        if w in ("w1", "w2"):
            cols.append(("%s msgs/s ×" % w, w, "msgs_per_s"))
            cols.append(("%s CPU ×" % w, w, "server_cpu_us_per_msg"))
        elif w == "w3":
            cols.append(("w3 MB/s ×", w, "mb_per_s"))
            cols.append(("w3 CPU ×", w, "server_cpu_us_per_msg"))
        elif w == "w4":
            cols.append(("w4 B/conn ×", w, "rss_per_conn_bytes"))
        elif w == "w5":
            cols.append(("w5 p99 ×", w, "p99"))
    p("| %s vs | " % LABEL[ref] + " | ".join(c[0] for c in cols) + " |")
    p("|" + "---|" * (len(cols) + 1))
    for s in servers:
        if s == ref:
            continue
        row = [LABEL.get(s, s)]
        for (_, w, key) in cols:
            a = med([value(r, key) for r in cell(w, ref)[0]])
            b = med([value(r, key) for r in cell(w, s)[0]])
            row.append("%.2f" % (a / b) if a is not None and b else "n/a")
        p("| " + " | ".join(row) + " |")
    p("")
p("## Per workload (median, min–max over the successful rounds)")
for w in workloads:
    p("")
    p("### %s: %s" % (w, DESC[w]))
    p("")
    p("`%s`" % wls[w])
    p("")
    if w == "w4":
        p("| server | B/idle conn | RSS before → after (kB) | connections | ok rounds |")
        p("|---|---|---|---|---|")
        for s in servers:
            good, bad = cell(w, s)
            if not good:
                p("| %s | FAIL | | | 0/%d |" % (LABEL.get(s, s), len(bad)))
                continue
            v = [r.get("rss_per_conn_bytes") for r in good]
            p("| %s | %s%s | %s → %s | %d | %d/%d |" % (
                LABEL.get(s, s), fmt(med(v), "bytes"), spread(v, "bytes"),
                fmt(med([r.get("rss_before_kb") for r in good]), "bytes"),
                fmt(med([r.get("rss_after_kb") for r in good]), "bytes"),
                med([r["connections"] for r in good]), len(good), len(good) + len(bad)))
        continue
    p("| server | msgs/s | MB/s | server µs/msg | server CPU % | p50 µs | p99 µs | wsload CPU % | load avg | ok rounds |")
    p("|---|---|---|---|---|---|---|---|---|---|")
    for s in servers:
        good, bad = cell(w, s)
        if not good:
            p("| %s | FAIL | | | | | | | | 0/%d |" % (LABEL.get(s, s), len(bad)))
            continue
        m = [r["msgs_per_s"] for r in good]
        mb = [r["mb_per_s"] for r in good]
        cpu = [r.get("server_cpu_us_per_msg") for r in good]
        p50 = [r["lat_us"]["p50"] for r in good]
        p99 = [r["lat_us"]["p99"] for r in good]
        cl = [r["client_cpu_pct"] for r in good]
        bz = med([busy(r) for r in good])
        p("| %s | %s%s | %s%s | %s%s | %s | %s | %s%s | %.0f | %.2f | %d/%d |" % (
            LABEL.get(s, s), fmt(med(m), "rate"), spread(m, "rate"), fmt(med(mb), "mb"), spread(mb, "mb"),
            fmt(med(cpu), "us"), spread(cpu, "us"), "n/a" if bz is None else "%.0f" % (bz * 100), fmt(med(p50), "lat"), fmt(med(p99), "lat"),
            spread(p99, "lat"), med(cl), load_of(w, s), len(good), len(good) + len(bad)))
p("")
p("## Failures")
p("")
notes = []
for w in workloads:
    for s in servers:
        for why in cell(w, s)[1]:
            notes.append("- %s %s, %s" % (w, LABEL.get(s, s), why))
p("\n".join(notes) if notes else "None: every run exited 0 with no errors or mismatches.")
p("")
p("## Exact commands")
p("")
p("Run from the repository root; `bench/compare.sh` with DURATION=%s WARMUP=%s ROUNDS=%s "
  "SERVERS=\"%s\" WORKLOADS=\"%s\". Each server is started with port 0 and its PID and port are read "
  "back; wsload gets `--raw` for the raw TCP peer. `ulimit -n` is raised to the hard limit first."
  % (meta["duration"], meta["warmup"], meta["rounds"], meta["servers"], meta["workloads"]))
p("")
p("```")
for s in servers:
    p("%-14s %s" % (s + ":", cmds[s]))
for w in workloads:
    p("%-14s %s" % (w + ":", wls[w]))
p("```")
print("\n".join(out))
EOF
prc=$?
if [[ $prc -eq 0 ]]; then
    { cat "$tmp/report.md"; echo; echo "$MARK"; [[ -n $kept ]] && printf '%s\n' "$kept"; } >"$OUT"
fi
echo "compare: wrote $OUT ($fails failed runs; raw results in $RAW)" >&2
[[ $prc -eq 0 ]] || exit 2
[[ $fails -eq 0 ]]
