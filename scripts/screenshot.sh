#!/usr/bin/env bash
# Screenshot of an HTML page (report.html, a skeleton viewer) with headless Chromium:
#   scripts/screenshot.sh FILE.html OUT.png [WIDTHxHEIGHT]      (default 1280x1600)
# A URL fragment is kept, e.g. `viewer.html#q=bullfrog` shows a viewer searched for bullfrog,
# scrolled to the match. The capture goes through the DevTools protocol (the `screenshot`
# binary of crates/test-support, the driver the browser tests use): Chromium's own
# `--screenshot` flag draws a page that scrolled while loading as a blank image.
# Installs Chromium first when it is missing (scripts/setup.sh).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $# -lt 2 ]]; then
  echo "usage: $0 FILE.html[#fragment] OUT.png [WIDTHxHEIGHT]" >&2
  exit 2
fi
page="$1"
[[ -f "${page%%#*}" ]] || { echo "$0: no such file: ${page%%#*}" >&2; exit 2; }
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  bash "$repo/scripts/setup.sh" chromium
fi
cargo build --quiet --manifest-path "$repo/Cargo.toml" -p test-support --bin screenshot
target="${CARGO_TARGET_DIR:-$repo/target}"
exec "$target/debug/screenshot" "$@"
