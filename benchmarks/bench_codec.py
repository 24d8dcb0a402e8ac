"""Encode/decode seconds of grm vs compressai's mbt2018 at the same widths, one run.

    python benchmarks/bench_codec.py [--config paper] [--size 768x512] [--repeat 1]
        [--precision auto|fp32|bf16] [--orders raster wavefront]

Both models are untrained (speed does not depend on the weights beyond the symbol
statistics); both code the same photo; the ratio is what to compare across machines.
"""

from __future__ import annotations

import argparse
import time

import torch


def photo_image(width: int, height: int):
    """A bundled photo resized to the requested size (PIL image)."""
    from PIL import Image
    from grm.pipeline.sample_images import bundled_photos

    return (
        Image.open(bundled_photos()["coffee"]).convert("RGB").resize((width, height), Image.LANCZOS)
    )


def photo(width: int, height: int) -> torch.Tensor:
    import numpy as np

    arr = np.asarray(photo_image(width, height)).copy()
    return torch.from_numpy(arr).permute(2, 0, 1).float().div(255).unsqueeze(0)


def untrained_grm(config: str, **overrides):
    """An untrained, seeded GRM ready to code as a model file carries it: CDF tables built
    and the integer entropy model attached (not exported again at every call)."""
    from grm.integer_model import IntegerEntropyModel
    from grm.model import GRM, config_from

    torch.manual_seed(0)
    model = GRM({**config_from(config).to_dict(), **overrides}).eval()
    model.update(force=True)
    model.attach_integer_model(IntegerEntropyModel.export(model))
    return model


def timed(fn, repeat):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", default="paper")
    ap.add_argument("--size", default="768x512")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument(
        "--precision", default="auto", choices=("auto", "fp32", "bf16"), help="grm's transforms"
    )
    ap.add_argument("--orders", nargs="+", default=["raster", "wavefront"])
    args = ap.parse_args()
    from compressai.models import JointAutoregressiveHierarchicalPriors
    from grm.model import GRM, config_from
    from grm.precision import resolve

    cfg = config_from(args.config)
    w, h = map(int, args.size.split("x"))
    x = photo(w, h)
    rows = {}
    with torch.no_grad():
        mbt = JointAutoregressiveHierarchicalPriors(N=cfg.N, M=cfg.M).eval()
        mbt.update(force=True)
        xp = GRM.pad(x)
        me, mo = timed(lambda: mbt.compress(xp), args.repeat)
        md, _ = timed(lambda: mbt.decompress(mo["strings"], mo["shape"]), args.repeat)
        rows["mbt2018"] = (me, md, sum(len(s[0]) for s in mo["strings"]))
        precision = resolve(args.precision, torch.device("cpu"))
        for order in args.orders:
            grm = untrained_grm(args.config, decode_order=order)
            grm.transform_precision = precision
            ge, (gs, ys) = timed(lambda: grm.compress(x), args.repeat)
            gd, (_, yd) = timed(lambda: grm.decompress(gs, h, w), args.repeat)
            assert torch.equal(ys, yd), "decoder out of sync"
            rows[f"grm-{order}"] = (ge, gd, sum(map(len, gs)))
    print(
        f"image {w}x{h}, widths N={cfg.N} M={cfg.M} hidden={cfg.width}, "
        f"threads={torch.get_num_threads()}, grm transforms {precision}, "
        f"untrained weights, best of {args.repeat}"
    )
    print(
        f"{'model':15s} {'encode s':>9s} {'decode s':>9s} {'bytes':>8s} {'enc/mbt':>8s} "
        f"{'dec/mbt':>8s}"
    )
    for name, (e, d, n) in rows.items():
        print(f"{name:15s} {e:9.2f} {d:9.2f} {n:8d} {e / me:8.2f} {d / md:8.2f}")


if __name__ == "__main__":
    main()
