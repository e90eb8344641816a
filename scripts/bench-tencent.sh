#!/usr/bin/env bash
# Benchmark: the full Tencent ML-Images generation (11,166 categories) with the release build,
# as a user runs it. Prints the wall time of each of N runs (default 10) and the median.
#   scripts/bench-tencent.sh [N] [extra wildcards-gen flags...]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-10}"
shift || true
cd "$repo"
export WILDCARDS_DATA_DIR="${WILDCARDS_DATA_DIR:-$repo/../shared/data}"
cargo build --release --quiet -p wildcards-gen
bin="${CARGO_TARGET_DIR:-$repo/target}/release/wildcards-gen"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

times=()
for _ in $(seq "$runs"); do
  start=$(date +%s.%N)
  "$bin" dataset tencent --smart --preset balanced -q -o "$out/out.yaml" "$@"
  end=$(date +%s.%N)
  times+=("$(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }')")
done
printf '%s\n' "${times[@]}" | sort -n | awk -v n="$runs" '
  { t[NR] = $1; printf "run: %.3f s\n", $1 }
  END { printf "min %.3f s, median %.3f s, max %.3f s over %d runs\n", t[1], t[int((n + 1) / 2)], t[n], n }'
