#!/usr/bin/env bash
# The demo: builds the tools (release) and generates Tencent ML-Images skeletons for three
# presets into demo-out/ (or the folder given as $1), with stats.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$repo/demo-out}"
cd "$repo"

if [[ -z "${WILDCARDS_DATA_DIR:-}" && -d "$repo/../shared/data" ]]; then
  export WILDCARDS_DATA_DIR="$repo/../shared/data"
fi

scripts/setup.sh
cargo build --release --bins -p batch-client
bin="${CARGO_TARGET_DIR:-$repo/target}/release/wildcards-gen"

mkdir -p "$out"
for preset in detailed balanced flat; do
  "$bin" dataset tencent --smart --preset "$preset" --analyze -o "$out/tencent_$preset.yaml" >/dev/null
done
echo "demo: skeletons and .stats.json files are in $out"
