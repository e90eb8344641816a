#!/usr/bin/env bash
# Benchmark: full Tencent ML-Images, smart balanced, with semantic cleaning and arrangement,
# through a real embed-server on loopback (release build). Starts embed-server with an empty
# SQLite cache, times one cold run (every text computed by the model) and N warm runs (default
# 3, every text from the cache), and checks that all runs wrote byte-identical files.
#   scripts/bench-semantic.sh [N]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-3}"
cd "$repo"
export WILDCARDS_DATA_DIR="${WILDCARDS_DATA_DIR:-$repo/../shared/data}"
cargo build --release --quiet -p wildcards-gen -p embed-server
bin="${CARGO_TARGET_DIR:-$repo/target}/release"
work="$(mktemp -d)"
port="${BENCH_PORT:-$((40000 + RANDOM % 20000))}"
addr="127.0.0.1:$port"
"$bin/embed-server" --addr "$addr" --cache "$work/cache.sqlite" >"$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 300); do
  "$bin/embed-server" health --server "$addr" >/dev/null 2>&1 && break
  sleep 0.2
done

run() {
  local start end
  start=$(date +%s.%N)
  "$bin/wildcards-gen" dataset tencent --smart --preset balanced --semantic-clean \
    --semantic-arrange --server "$addr" -q -o "$work/$1.yaml"
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }'
}

printf 'cold: %s s\n' "$(run cold)"
for i in $(seq "$runs"); do
  printf 'warm: %s s\n' "$(run "warm$i")"
  cmp -s "$work/cold.yaml" "$work/warm$i.yaml" || { echo "warm run $i differs from the cold run" >&2; exit 1; }
done
echo "all $((runs + 1)) outputs byte-identical ($(wc -c <"$work/cold.yaml") bytes)"
