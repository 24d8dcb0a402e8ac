"""Encode/decode seconds of grm vs compressai's mbt2018 at the same widths, one run.

    python benchmarks/bench_codec.py [--config paper] [--size 768x512] [--repeat 1]

Both models are untrained (speed does not depend on the weights beyond the symbol
statistics); both code the same photo; the ratio is what to compare across machines.
"""

from __future__ import annotations

import argparse
import time

import torch


def photo(width: int, height: int) -> torch.Tensor:
    from PIL import Image
    from grm.sample_images import bundled_photos
    img = Image.open(bundled_photos()["coffee"]).convert("RGB").resize((width, height), Image.LANCZOS)
    import numpy as np
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)


def timed(fn, repeat):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="paper")
    ap.add_argument("--size", default="768x512")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    from compressai.models import JointAutoregressiveHierarchicalPriors
    from grm.model import GRM, config_from
    cfg = config_from(args.config)
    w, h = map(int, args.size.split("x"))
    x = photo(w, h)
    torch.manual_seed(0)
    grm = GRM(cfg).eval()
    grm.update(force=True)
    mbt = JointAutoregressiveHierarchicalPriors(N=cfg.N, M=cfg.M).eval()
    mbt.update(force=True)
    with torch.no_grad():
        ge, (gs, _) = timed(lambda: grm.compress(x), args.repeat)
        gd, (gx, _) = timed(lambda: grm.decompress(gs, h, w), args.repeat)
        xp = grm.pad(x)
        me, mo = timed(lambda: mbt.compress(xp), args.repeat)
        md, _ = timed(lambda: mbt.decompress(mo["strings"], mo["shape"]), args.repeat)
    print(f"image {w}x{h}, widths N={cfg.N} M={cfg.M} hidden={cfg.width}, threads={torch.get_num_threads()}")
    print(f"{'model':10s} {'encode s':>9s} {'decode s':>9s}")
    print(f"{'grm':10s} {ge:9.2f} {gd:9.2f}")
    print(f"{'mbt2018':10s} {me:9.2f} {md:9.2f}")
    print(f"ratio grm/mbt2018: encode {ge / me:.2f}x  decode {gd / md:.2f}x")


if __name__ == "__main__":
    main()
