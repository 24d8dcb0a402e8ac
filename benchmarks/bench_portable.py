"""What the portable (integer) entropy model costs in bits and seconds.

    python benchmarks/bench_portable.py [--models data/models] [--images data/eval_images]
    python benchmarks/bench_portable.py --config paper --size 768x512     # untrained, paper widths

For every grm model and image: the float model's estimate of ŷ's bits (what a float
coder writes, up to the range coder's overhead) against the bytes the integer coder
really writes, and the encode / decode seconds. The rate cost is the last column.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch


def _estimate_bytes(model, x: torch.Tensor) -> float:
    with torch.no_grad():
        out = model(x)
    return float(-torch.log2(out["likelihoods"]["y"]).sum()) / 8


def _row(name: str, model, x: torch.Tensor) -> tuple[float, float]:
    h, w = x.shape[-2:]
    est = _estimate_bytes(model, x)
    t = time.perf_counter()
    with torch.no_grad():
        strings, y = model.compress(x)
    enc = time.perf_counter() - t
    t = time.perf_counter()
    with torch.no_grad():
        _, y_dec = model.decompress(strings, h, w)
    dec = time.perf_counter() - t
    assert torch.equal(y, y_dec), "decoder out of sync"
    real = len(strings[1])
    cost = 100 * (real / est - 1)
    print(
        f"{name:28s} {w:5d}x{h:<5d} {8 * est / (h * w):9.4f} {8 * real / (h * w):9.4f} "
        f"{enc:7.2f} {dec:7.2f} {cost:+7.2f}%",
        flush=True,
    )
    return est, real


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", default="data/models", help="folder of exported grm models")
    ap.add_argument("--images", default="data/eval_images", help="folder of PNG images")
    ap.add_argument(
        "--config", default=None, help="instead: an untrained model of this config (e.g. paper)"
    )
    ap.add_argument("--size", default="768x512", help="with --config: the photo's size")
    ap.add_argument("--order", default="wavefront", help="with --config: decode order")
    args = ap.parse_args()
    from grm.image_io import read_image, to_tensor

    print(
        f"{'model / image':28s} {'size':>11s} {'est bpp':>9s} {'real bpp':>9s} {'enc s':>7s} "
        f"{'dec s':>7s} "
        f"{'cost':>8s}   (ŷ stream; threads={torch.get_num_threads()})"
    )
    totals = np.zeros(2)
    if args.config:
        from bench_codec import photo, untrained_grm

        model = untrained_grm(args.config, decode_order=args.order)
        w, h = map(int, args.size.split("x"))
        totals += _row(f"{args.config} (untrained)/coffee", model, photo(w, h))
    else:
        from grm.model_file import load_model

        paths = sorted(p for p in Path(args.models).glob("*.safetensors"))
        images = sorted(Path(args.images).glob("*.png"))
        if not images:
            raise SystemExit(f"no PNG images in {args.images}")
        for path in paths:
            lm = load_model(path)
            if lm.arch != "grm":
                continue
            for img in images:
                rgb, _ = read_image(img)
                totals += _row(f"{lm.name}/{img.stem}", lm.model, to_tensor(rgb))
    if not totals[0]:
        raise SystemExit(f"no grm models in {args.models}")
    print(
        f"all: integer coder writes {100 * (totals[1] / totals[0] - 1):+.2f}% vs the float "
        "estimate "
        f"({totals[1]:.0f} vs {totals[0]:.0f} bytes of ŷ)"
    )


if __name__ == "__main__":
    main()
