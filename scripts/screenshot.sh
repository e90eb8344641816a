#!/usr/bin/env bash
# Screenshot of an HTML page (report.html, a skeleton viewer) with headless Chromium:
#   scripts/screenshot.sh FILE.html OUT.png [WIDTHxHEIGHT]      (default 1280x1600)
# A URL fragment is kept, e.g. `viewer.html#q=bullfrog` shows a viewer searched for bullfrog.
# Installs Chromium first when it is missing (scripts/setup.sh).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $# -lt 2 ]]; then
  echo "usage: $0 FILE.html OUT.png [WIDTHxHEIGHT]" >&2
  exit 2
fi
page="$1"
out="$2"
size="${3:-1280x1600}"
fragment=""
if [[ "$page" == *"#"* ]]; then
  fragment="#${page#*#}"
  page="${page%%#*}"
fi
[[ -f "$page" ]] || { echo "$0: no such file: $page" >&2; exit 2; }
browser="$(command -v chromium || command -v chromium-browser || true)"
if [[ -z "$browser" ]]; then
  bash "$repo/scripts/setup.sh" chromium
  browser="$(command -v chromium || command -v chromium-browser)"
fi
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
url="file://$(cd "$(dirname "$page")" && pwd)/$(basename "$page")$fragment"
out_abs="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --user-data-dir="$profile" --window-size="${size/x/,}" \
  --virtual-time-budget=2000 --screenshot="$out_abs" "$url" 2>/dev/null
echo "wrote $out"
