#!/usr/bin/env bash
# Everything CI checks: formatting, clippy with warnings as errors, and all tests (unit,
# property and end-to-end). Installs what is missing first (scripts/setup.sh).
set -euo pipefail
# Nothing here reads the terminal. cargo's rustc probes (`rustc - --print=...`) and build
# scripts inherit stdin; a CI runner's stdin holding text once made such a probe fail to parse.
exec </dev/null
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

# The dataset files: tests use the shared copy beside the checkout unless told otherwise.
export WILDCARDS_DATA_DIR="${WILDCARDS_DATA_DIR:-$repo/../shared/data}"

scripts/setup.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# End-to-end tests run the binaries; build them once up front.
cargo build --workspace --bins
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
  cargo test --workspace --doc
else
  cargo test --workspace --no-fail-fast
fi
