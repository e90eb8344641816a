#!/usr/bin/env bash
# The demo, on a fresh machine: installs what is missing (WordNet, the MiniLM model files),
# builds the tools (release) and runs the demo batch examples/demo.yaml: 6 Tencent ML-Images
# jobs (smart presets, a parameter grid, semantic cleaning and arrangement) on 2 workers, with
# a private embed-server that batch-client starts and stops. Outputs, report.md, summary.csv
# and report.html go to demo-out/ (or the folder given as $1).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$repo/demo-out}"
cd "$repo"

if [[ -z "${WILDCARDS_DATA_DIR:-}" && -d "$repo/../shared/data" ]]; then
  export WILDCARDS_DATA_DIR="$repo/../shared/data"
fi

scripts/setup.sh
cargo build --release --bins -p batch-client -p embed-server
bin="${CARGO_TARGET_DIR:-$repo/target}/release"

# batch-client uses the embed-server at $WILDCARDS_EMBED_SERVER (default 127.0.0.1:50051)
# when one answers, else starts its own for the run.
"$bin/batch-client" examples/demo.yaml --workers 2 --output-dir "$out"
echo "demo: skeletons (and their viewers), .stats.json files, report.md, summary.csv and report.html are in $out"
