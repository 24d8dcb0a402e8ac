"""Decode time of the integer (portable) coder against the float coder it replaced.

    python benchmarks/bench_float_coder.py --config paper --size 768x512 [--repeat 5]
    python benchmarks/bench_float_coder.py --models data/models --images data/eval_images

The float coder is the package as it was at commit FLOAT_CODER, taken from this
repository's history (``git archive``) into a temporary folder and imported under
another name, so both coders run in one process on the same weights. Their decodes
alternate, and each image keeps the best of ``--repeat``: a busy or throttled machine
slows both alike.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import torch

FLOAT_CODER = "63427c4"  # the last commit whose coder built its tables in float


def float_package(folder: Path):
    """The float coder's ``grm`` package, importable as ``grm_float``."""
    root = Path(__file__).resolve().parent.parent
    data = subprocess.run(
        ["git", "-C", str(root), "archive", FLOAT_CODER, "grm"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(folder, filter="data")
    (folder / "grm").rename(folder / "grm_float")
    sys.path.insert(0, str(folder))
    return importlib.import_module("grm_float.model_file")


def pairs(args, float_files):
    """(label, float model, integer model, photo) with the same weights in both."""
    from grm.image_io import read_image, to_tensor
    from grm.model_file import load_model

    if args.config:
        from bench_codec import photo, untrained_grm

        new = untrained_grm(args.config)
        old = float_files.build("grm", new.export_config())
        old.load_state_dict(new.state_dict())
        w, h = map(int, args.size.split("x"))
        yield f"{args.config} (untrained) {args.size}", old.eval(), new, photo(w, h)
        return
    photos = {p.stem: to_tensor(read_image(p)[0]) for p in sorted(Path(args.images).glob("*.png"))}
    for path in sorted(Path(args.models).glob("*.safetensors")):
        lm = load_model(path)
        if lm.arch != "grm":
            continue
        old = float_files.build("grm", lm.config)
        old.load_state_dict({k: v for k, v in lm.model.state_dict().items()})
        for name, x in photos.items():
            yield f"{lm.name}/{name}", old.eval(), lm.model, x


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", default=None, help="an untrained model of this config (e.g. paper)")
    ap.add_argument("--size", default="768x512", help="with --config: the photo's size")
    ap.add_argument("--models", default="data/models", help="else: the grm models in this folder")
    ap.add_argument("--images", default="data/eval_images")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    totals = {"float": 0.0, "integer": 0.0}
    print(
        f"{'model / image':34s} {'float s':>8s} {'integer s':>9s} {'ratio':>6s}   (best of "
        f"{args.repeat}, "
        f"threads={torch.get_num_threads()}, float coder of {FLOAT_CODER})"
    )
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        for label, old, new, x in pairs(args, float_package(Path(tmp))):
            h, w = x.shape[-2:]
            coders = {"float": old, "integer": new}
            streams = {k: m.compress(x)[0] for k, m in coders.items()}
            best = {}
            for _ in range(args.repeat):
                for k, m in coders.items():
                    t = time.perf_counter()
                    m.decompress(streams[k], h, w)
                    best[k] = min(best.get(k, float("inf")), time.perf_counter() - t)
            for k in totals:
                totals[k] += best[k]
            print(
                f"{label:34s} {best['float']:8.3f} {best['integer']:9.3f} "
                f"{best['integer'] / best['float']:5.2f}x",
                flush=True,
            )
    print(
        f"all: integer coder decodes in {totals['integer'] / totals['float']:.2f}x the float "
        "coder's time "
        f"({totals['integer']:.2f} vs {totals['float']:.2f} s)"
    )


if __name__ == "__main__":
    main()
