"""What 8-bit entropy-model weights cost in bytes against 16-bit ones.

    python benchmarks/bench_weight_bits.py [--models data/models] [--photos data/eval_photos]

Every grm model in the folder is exported twice from its float weights, with 16-bit and
with 8-bit integer weights (the default since 2026-12-05: one int8 digit, half the bytes
the decoder reads per weight), and codes every photo with both; ŷ is the same (g_a does
not change), so the bytes differ by the probability tables alone.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", default="data/models", help="folder of exported grm models")
    ap.add_argument("--photos", default="data/eval_photos", help="folder of PNG photos (nested)")
    args = ap.parse_args()
    from grm.codec import encode_array
    from grm.image_io import read_image
    from grm.integer_model import IntegerEntropyModel
    from grm.model_file import load_model

    photos = [read_image(p)[0] for p in sorted(Path(args.photos).rglob("*.png"))]
    models = [p for p in sorted(Path(args.models).glob("*.safetensors")) if "grm" in p.stem]
    if not photos or not models:
        raise SystemExit(f"need grm models in {args.models} and PNG photos in {args.photos}")
    print(f"{len(photos)} photos; bytes with 8-bit weights against 16-bit ones")
    print(
        f"{'model':24s} {'16-bit bytes':>13s} {'8-bit bytes':>12s} {'total':>8s} {'per photo':>20s}"
    )
    for path in models:
        lm = load_model(path, precision="fp32")
        sizes = {}
        for bits in (16, 8):
            coder = IntegerEntropyModel.export(lm.model, weight_max=(1 << (bits - 1)) - 1)
            lm.model.attach_integer_model(coder)
            sizes[bits] = np.array([len(encode_array(lm, rgb).data) for rgb in photos])
        change = 100 * (sizes[8] / sizes[16] - 1)
        total = 100 * (sizes[8].sum() / sizes[16].sum() - 1)
        print(
            f"{path.stem:24s} {sizes[16].sum():13d} {sizes[8].sum():12d} {total:+7.3f}% "
            f"{change.min():+8.3f} … {change.max():+.3f}%",
            flush=True,
        )


if __name__ == "__main__":
    main()
