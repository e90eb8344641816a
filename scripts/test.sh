#!/usr/bin/env bash
# Everything CI checks: formatting, clippy with warnings as errors, and all tests (unit,
# property and end-to-end). Installs what is missing first (scripts/setup.sh).
set -euo pipefail
# /dev/null must be the device: cargo gives its rustc probes `/dev/null` as stdin, and an
# earlier build of this tool, run as root with `-o /dev/null`, renamed a plain file over it
# (fixed in output::write_atomic), so the probes read stray text and the build failed. Put the
# device back when it is not one (as root; otherwise say so).
if [[ ! -c /dev/null ]]; then
  if [[ "$(id -u)" -eq 0 ]]; then
    echo "test.sh: /dev/null is not a device; recreating it" >&2
    rm -f /dev/null && mknod -m 666 /dev/null c 1 3
  else
    echo "test.sh: /dev/null is not a device (ask an administrator to recreate it)" >&2
  fi
fi
# Nothing here reads the terminal.
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
