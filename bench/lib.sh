# Shared by the benchmark and smoke scripts (source it after `set`):
# a scratch folder, the PIDs we started, and a server starter.
#   $tmp    scratch folder, removed on exit
#   $pids   processes started here; killed by PID on exit
#   start NAME CMD...  run CMD in the background and wait up to 10 s for its
#           "listening on HOST:PORT" line; sets $port and $pid, returns 1
#           (with the tail of its stderr on stderr) when no port appears.
tmp=$(mktemp -d)
pids=()
bench_cleanup() {
    for p in "${pids[@]+"${pids[@]}"}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap bench_cleanup EXIT

start() {
    local name=$1; shift
    "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pid=$!
    pids+=("$pid")
    port=
    for _ in $(seq 100); do
        port=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\).*/\1/p' "$tmp/$name.out" | head -n1)
        [[ -n $port ]] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "$name did not report a port; stderr:" >&2
    tail -n 5 "$tmp/$name.err" >&2
    return 1
}
