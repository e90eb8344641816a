#!/usr/bin/env bash
# Benchmark: one long flat list through `wildcards-gen lint` and `wildcards-gen arrange`: wall
# time, CPU time (user + system; steadier than wall time on a busy machine) and peak RSS of
# each, from GNU time. HDBSCAN* and the UMAP-style reduction take time quadratic in the list
# size; this shows their memory stays linear (README, Performance).
#
# The list is real words: the Tencent ML-Images category names (first name of each), then
# WordNet noun lemmas, de-duplicated, the first N. Before the timed runs every text is embedded
# once (a lint of the same items in lists of 50), so the timings are the clustering, not the
# model.
#   scripts/bench-large-list.sh [N ...]        (default: 10000 20000)
# Environment: BENCH_SERVER=host:port uses that embed-server (else a private release one with a
# fresh cache is started); BENCH_BIN=DIR runs the binaries in DIR instead of building release
# (to measure another build); BENCH_OUT=DIR keeps the lint reports and arrangements there (to
# compare two builds' results); WILDCARDS_DATA_DIR and WNHOME as for wildcards-gen.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 20000)
export WILDCARDS_DATA_DIR="${WILDCARDS_DATA_DIR:-$repo/../shared/data}"
tencent="$WILDCARDS_DATA_DIR/tencent/dictionary_and_semantic_hierarchy.txt"
nouns="${WNHOME:-/usr/share/wordnet}/index.noun"
[ -f "$tencent" ] || { echo "missing $tencent (set WILDCARDS_DATA_DIR)" >&2; exit 1; }
[ -f "$nouns" ] || { echo "missing $nouns (install wordnet or set WNHOME)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs GNU time (/usr/bin/time): apt-get install time" >&2; exit 1; }

work="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The binaries are copied from where cargo says it wrote them, at once: the target folder may
# be shared with other builds.
if [ -n "${BENCH_BIN:-}" ]; then
  bin="$BENCH_BIN"
else
  cargo build --release --quiet -p wildcards-gen -p embed-server --message-format=json |
    grep -o '"executable":"[^"]*"' | cut -d'"' -f4 >"$work/executables"
  for name in wildcards-gen embed-server; do cp "$(grep "/$name\$" "$work/executables")" "$work/"; done
  bin="$work"
fi

if [ -n "${BENCH_SERVER:-}" ]; then
  addr="$BENCH_SERVER"
else
  addr="127.0.0.1:${BENCH_PORT:-$((40000 + RANDOM % 20000))}"
  "$bin/embed-server" --addr "$addr" --cache "$work/cache.sqlite" >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 300); do
    "$bin/embed-server" health --server "$addr" >/dev/null 2>&1 && break
    sleep 0.2
  done
fi

# All candidate words, in a fixed order: Tencent names first, then WordNet noun lemmas.
{
  tail -n +2 "$tencent" | cut -f4 | cut -d, -f1
  grep -v '^ ' "$nouns" | cut -d' ' -f1 | tr '_' ' '
} | sed 's/^[[:space:]]*//; s/[[:space:]]*$//' | grep -E '^[[:alpha:]][^#]*$' |
  awk '!seen[$0]++' >"$work/words.txt"

# yaml_lists SIZE KEY < terms: a skeleton with the terms in lists of SIZE named "KEY 1", "KEY 2",
# ... (SIZE 0: one list named KEY).
yaml_lists() {
  awk -v size="$1" -v key="$2" '{
    gsub(/\\/, "\\\\"); gsub(/"/, "\\\"")
    if (size == 0 && NR == 1) printf "%s:\n", key
    if (size > 0 && (NR - 1) % size == 0) printf "%s %d:\n", key, (NR - 1) / size + 1
    printf "  - \"%s\"\n", $0
  }'
}

# measure NAME COMMAND...: runs COMMAND under GNU time; prints wall and CPU seconds and the
# peak RSS in MiB.
measure() {
  local name="$1" status=0
  shift
  /usr/bin/time -v "$@" >"$work/$name.out" 2>"$work/$name.err" || status=$?
  awk -v name="$name" -v status="$status" '
    /Elapsed \(wall clock\)/ { n = split($NF, t, ":"); wall = 0; for (i = 1; i <= n; i++) wall = wall * 60 + t[i] }
    /User time|System time/ { cpu += $NF }
    /Maximum resident set size/ { rss = $NF / 1024 }
    END {
      printf "%-16s %8.2f %8.2f %10.1f  %s\n", name, wall, cpu, rss, (status == 0 ? "ok" : "FAILED (exit " status ")")
    }
  ' "$work/$name.err"
  if [ "$status" -ne 0 ]; then grep -v '^\s' "$work/$name.err" | tail -n 3 | sed 's/^/    /'; fi
}

available=$(wc -l <"$work/words.txt")
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-16s %8s %8s %10s  %s\n' run wall_s cpu_s peak_MiB status
for n in "${sizes[@]}"; do
  [ "$n" -le "$available" ] || { echo "only $available distinct words; N=$n is too many" >&2; exit 1; }
  head -n "$n" "$work/words.txt" >"$work/list$n.txt"
  yaml_lists 0 Big <"$work/list$n.txt" >"$work/list$n.yaml"
  # Embedding warm-up: the items as written (lint) and as arrange embeds them (lower case).
  yaml_lists 50 Part <"$work/list$n.txt" >"$work/warm$n.yaml"
  tr '[:upper:]' '[:lower:]' <"$work/list$n.txt" | yaml_lists 50 Lower >>"$work/warm$n.yaml"
  "$bin/wildcards-gen" lint "$work/warm$n.yaml" --server "$addr" --format json >/dev/null
  measure "lint $n" "$bin/wildcards-gen" lint "$work/list$n.yaml" --server "$addr" --format json
  measure "arrange $n" "$bin/wildcards-gen" arrange "$work/list$n.txt" --server "$addr" \
    -o "$work/arranged$n.yaml"
  if [ -n "${BENCH_OUT:-}" ]; then
    mkdir -p "$BENCH_OUT"
    cp "$work/lint $n.out" "$BENCH_OUT/lint$n.json"
    if [ -f "$work/arranged$n.yaml" ]; then cp "$work/arranged$n.yaml" "$BENCH_OUT/"; fi
  fi
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
