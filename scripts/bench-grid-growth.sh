#!/usr/bin/env bash
# Growth benchmark: how a batch's wall time grows with the size of its grid (README,
# Performance, "Grid growth"). Two semantic grids on full Tencent ML-Images, side by side in
# one run:
#   - 11 jobs: the seed manifest (tests/manifests/seed.yaml: 2 jobs + min_leaf_size x 3 *
#     semantic_threshold x 3) with semantic_clean and semantic_arrange;
#   - 100 jobs: the same 2 jobs + min_leaf_size x 7 * semantic_threshold x 14.
# Each run writes into a fresh output folder, so the reuse store (output_dir/.reuse) starts
# cold. One release embed-server with a fresh cache serves every run; one untimed pass of the
# 11-job grid first fills its embedding cache, so the timings are the batch's own work, not
# the model's.
#
#   scripts/bench-grid-growth.sh [RUNS]        (default 1; each run times every grid and build)
#
# Environment: BENCH_BEFORE=DIR also times the batch-client in DIR (e.g. the previous commit's
# release build), interleaved with this build's, and checks both wrote byte-identical
# skeletons; BENCH_WORKERS (default 2); WILDCARDS_DATA_DIR and WNHOME as for wildcards-gen.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
runs="${1:-1}"
workers="${BENCH_WORKERS:-2}"
export WILDCARDS_DATA_DIR="${WILDCARDS_DATA_DIR:-$repo/../shared/data}"

work="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The binaries are copied from where cargo says it wrote them, at once: the target folder may
# be shared with other builds.
mkdir -p "$work/after"
cargo build --release --quiet -p batch-client -p embed-server --message-format=json |
  grep -o '"executable":"[^"]*"' | cut -d'"' -f4 >"$work/executables"
for name in batch-client embed-server; do cp "$(grep "/$name\$" "$work/executables")" "$work/after/"; done
builds=(after)
if [ -n "${BENCH_BEFORE:-}" ]; then
  mkdir -p "$work/before"
  cp "$BENCH_BEFORE/batch-client" "$work/before/"
  builds=(before after)
fi

# The two grids, from the seed manifest.
semantic='s/base_params: {smart: true}/base_params: {smart: true, semantic_clean: true, semantic_arrange: true}/'
sed -e "$semantic" tests/manifests/seed.yaml >"$work/grid11.yaml"
sed -e "$semantic" \
    -e 's/min_leaf_size: \[20, 50, 100\]/min_leaf_size: [5, 10, 20, 30, 50, 75, 100]/' \
    -e 's/semantic_threshold: \[0.1, 0.2, 0.3\]/semantic_threshold: [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7]/' \
    tests/manifests/seed.yaml >"$work/grid100.yaml"

addr="127.0.0.1:${BENCH_PORT:-$((40000 + RANDOM % 20000))}"
"$work/after/embed-server" --addr "$addr" --cache "$work/cache.sqlite" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 600); do
  "$work/after/embed-server" health --server "$addr" >/dev/null 2>&1 && break
  sleep 0.2
done

batch() { # build grid out
  "$work/$1/batch-client" "$work/$2.yaml" --workers "$workers" --server "$addr" --quiet \
    --output-dir "$3" || { echo "batch $1 $2 failed (exit $?)" >&2; exit 1; }
}

count() { tail -n +2 "$1/summary.csv" | wc -l; }

batch after grid11 "$work/warmup"   # fills the embed-server's cache; not timed
rm -rf "$work/warmup"

printf '%-7s %-4s %-6s %8s\n' build run jobs wall_s
for run in $(seq "$runs"); do
  for grid in grid11 grid100; do
    for build in "${builds[@]}"; do
      out="$work/out-$build-$grid"
      rm -rf "$out"
      start=$(date +%s.%N)
      batch "$build" "$grid" "$out"
      end=$(date +%s.%N)
      wall=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", e - s }')
      echo "$build $grid $wall" >>"$work/times"
      printf '%-7s %-4s %-6s %8s\n' "$build" "$run" "$(count "$out")" "$wall"
    done
    if [ ${#builds[@]} -eq 2 ]; then
      for f in "$work/out-before-$grid"/*.yaml; do
        cmp -s "$f" "$work/out-after-$grid/$(basename "$f")" ||
          { echo "$grid: $(basename "$f") differs between the builds" >&2; exit 1; }
      done
      echo "$grid: every skeleton byte-identical between the builds"
    fi
  done
done

echo
echo "best of $runs run(s), $workers workers:"
printf '| build | 11 jobs (s) | 100 jobs (s) | ratio |\n|---|---:|---:|---:|\n'
for build in "${builds[@]}"; do
  best() { awk -v b="$build" -v g="$1" '$1 == b && $2 == g { if (m == "" || $3 < m) m = $3 } END { print m }' "$work/times"; }
  small=$(best grid11)
  big=$(best grid100)
  printf '| %s | %s | %s | %s |\n' "$build" "$small" "$big" \
    "$(awk -v a="$small" -v b="$big" 'BEGIN { printf "%.1f", b / a }')"
done
