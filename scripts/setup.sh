#!/usr/bin/env bash
# Installs what wildcards-gen needs and is missing: the WordNet 3.0 database (Debian package
# wordnet-base) and the MiniLM model files (scripts/fetch-model.sh, when present).
# Safe to run again: everything already there is left alone.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

have_wordnet() {
  local d
  for d in "${WNHOME:-}" "${WNHOME:+$WNHOME/dict}" "${WORDNET_DIR:-}" /usr/share/wordnet; do
    [[ -n "$d" && -f "$d/data.noun" && -f "$d/index.noun" ]] && return 0
  done
  return 1
}

as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

if ! have_wordnet; then
  echo "setup: installing the WordNet database (wordnet-base)" >&2
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y wordnet-base
fi

if [[ -f "$repo/scripts/fetch-model.sh" ]]; then
  bash "$repo/scripts/fetch-model.sh"
fi
