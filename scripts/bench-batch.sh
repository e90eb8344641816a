#!/usr/bin/env bash
# Benchmark of batch-client on the semantic seed manifest (DESIGN.md's 2 jobs + 3x3 matrix on
# Tencent ML-Images, with semantic_clean and semantic_arrange): wall time with 1 and 2
# workers, peak RSS (VmHWM) of the embed-server and of each worker. Release build.
#
#   scripts/bench-batch.sh            # WILDCARDS_DATA_DIR defaults to ../shared/data if there
#
# Each worker count runs twice against its own fresh embed-server cache: "cold" (every text
# embedded by the model) and then "warm" (the same batch again, served from the cache).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
if [[ -z "${WILDCARDS_DATA_DIR:-}" && -d "$repo/../shared/data" ]]; then
  export WILDCARDS_DATA_DIR="$repo/../shared/data"
fi
cargo build --release --quiet -p batch-client -p embed-server
bin="${CARGO_TARGET_DIR:-$repo/target}/release"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

sed -e 's/output_dir: seed_results/output_dir: out/' \
    -e 's/base_params: {smart: true}/base_params: {smart: true, semantic_clean: true, semantic_arrange: true}/' \
    tests/manifests/seed.yaml > "$work/semantic.yaml"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
addr="127.0.0.1:$port"

peak_mb() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

start_server() {
  "$bin/embed-server" --addr "$addr" --cache "$1" >"$work/server.log" 2>&1 &
  server_pid=$!
  # Ready when its port accepts connections (it binds after loading the model).
  for _ in $(seq 1 1200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return; fi
    sleep 0.1
  done
  echo "embed-server did not start; log:" >&2; cat "$work/server.log" >&2; exit 1
}

stop_server() {
  local mb; mb=$(peak_mb "$server_pid")
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
  echo "$mb"
}

printf '%-8s %-5s %8s %9s %-24s\n' workers cache wall_s server_MB workers_MB
for workers in 1 2; do
  start_server "$work/cache-$workers.sqlite"
  for cache in cold warm; do
    rm -rf "$work/out"
    start=$(date +%s.%N)
    "$bin/batch-client" "$work/semantic.yaml" --workers "$workers" --server "$addr" --quiet
    end=$(date +%s.%N)
    wall=$(echo "$end - $start" | bc)
    wmb=$(sed -n 's/^- Peak memory (RSS) of the workers: \(.*\) MB$/\1/p' "$work/out/report.md")
    smb=$(peak_mb "$server_pid")
    printf '%-8s %-5s %8.1f %9s %-24s\n' "$workers" "$cache" "$wall" "$smb" "$wmb"
  done
  stop_server >/dev/null
done
