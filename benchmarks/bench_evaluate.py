"""Wall time of the evaluation stage's work (real bitstreams, decoded, measured) on a folder
of photos, in one process and spread over worker processes, for each model given.

    python benchmarks/bench_evaluate.py --models data/models/grm-q2.safetensors \\
        data/models/mbt2018-q2.safetensors [--photos data/eval_photos] [--workers 1 2]

The pipeline's evaluation is a photo per core (grm/worker_pool.py); this prints what that
buys, and checks that every setting gives the same bytes for every photo.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--photos", default="data/eval_photos")
    ap.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    args = ap.parse_args()
    from grm.image_io import read_image
    from grm.model_file import load_model
    from grm.pipeline.evaluation import evaluate_model

    paths = sorted(Path(args.photos).rglob("*.png"))
    if not paths:
        raise SystemExit(f"no .png photos under {args.photos}")
    images = [(p.stem, read_image(p)[0]) for p in paths]
    for m in args.models:
        lm = load_model(m)
        times, sizes = {}, {}
        for w in args.workers:
            t = time.perf_counter()
            rows = evaluate_model(lm, images, None, workers=w)
            times[w] = time.perf_counter() - t
            sizes[w] = [r["bytes"] for r in rows]
        same = len({tuple(s) for s in sizes.values()}) == 1
        first = args.workers[0]
        print(
            f"{lm.name}: {len(images)} photos; "
            + ", ".join(
                f"{w} worker(s) {times[w]:.1f} s ({times[first] / times[w]:.2f}×)"
                for w in args.workers
            )
            + ("; same bytes" if same else "; BYTES DIFFER between settings")
        )


if __name__ == "__main__":
    main()
