#!/usr/bin/env bash
# Install the Debian packages (and pinned npm packages) wsrelay builds, tests
# and benchmarks with. As root it installs what is missing; otherwise it
# prints the exact command and fails.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(make gcc g++ clang libclang-rt-14-dev libssl-dev libjemalloc-dev liburing-dev
      libcmocka-dev libbenchmark-dev liburcu-dev python3 python3-websockets
      nodejs npm chromium linux-perf procps util-linux)
# bench/peers (bench/compare.sh): libwebsockets, Bottle + gevent-websocket.
PKGS+=(libwebsockets-dev python3-bottle python3-gevent python3-gevent-websocket)

missing=()
for p in "${PKGS[@]}"; do
    # NodeSource's nodejs bundles npm and conflicts with Debian's npm package.
    [[ $p == npm ]] && command -v npm >/dev/null && continue
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "deps: missing packages; run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    echo "deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# npm packages are pinned by package-lock.json next to each package.json.
for d in tests/e2e bench/peers/node bench/flamegraph; do
    if [[ -f $d/package-lock.json && ! -d $d/node_modules ]]; then
        echo "deps: npm ci in $d" >&2
        (cd "$d" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
done
