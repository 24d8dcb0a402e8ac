"""One training recipe, measured: train a model with the trainer the pipeline uses, then
compare its rate and PSNR with JPEG's at the same bpp, and its mean colour with the
original's, on photos it never trained on. The README's recipe table comes from this.

    python benchmarks/bench_recipe.py --set crop=128 mixed_precision=bf16 steps=800 lmbda=0.013
    python benchmarks/bench_recipe.py --set lmbda=0.0483 steps=200 --init-from data/bases/grm.safetensors

Needs prepared shards (`dvc repro prepare`). Photos: the evaluation set and, if present,
.cache/unseen (``benchmarks/bench_quality.py --fetch``). Rates and PSNR are the model's
own estimate on the forward pass (the real coder writes within ~1% of it: see the
evaluation JSONs' bpp_estimated), so a recipe is measured in seconds after training.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_quality import JPEG_QUALITIES, centre_crop, colour_shift, pillow_ladder, psnr_at  # noqa: E402
from grm.image_io import IMAGE_SUFFIXES, read_image, to_uint8  # noqa: E402
from grm.pipeline.metrics import psnr  # noqa: E402


def parse_value(text: str):
    return yaml.safe_load(text)


@torch.no_grad()
def measure(model, photos) -> dict:
    """Mean estimated bpp, PSNR, Δ PSNR against JPEG at that bpp, colour shift."""
    model.eval()
    rows = []
    for _, rgb in photos:
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
        out = model(x)
        bpp = float(sum(-torch.log2(v).sum() for v in out["likelihoods"].values())) / (rgb.shape[0] * rgb.shape[1])
        dec = to_uint8(out["x_hat"].clamp(0, 1))
        jpeg = psnr_at(pillow_ladder(rgb, "JPEG", JPEG_QUALITIES), bpp)
        rows.append((bpp, psnr(rgb, dec), psnr(rgb, dec) - jpeg, colour_shift(rgb, dec)))
    a = np.array(rows, dtype=float)
    return {"bpp": float(a[:, 0].mean()), "psnr": float(a[:, 1].mean()),
            "vs_jpeg": float(np.nanmean(a[:, 2])), "colour_shift": float(a[:, 3].mean())}


def load_photos(folder: Path) -> list:
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
    return [(p.stem, centre_crop(read_image(p)[0], 512, 512)) for p in files]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="training settings over params.yaml's train section (e.g. crop=128 lmbda=0.013)")
    ap.add_argument("--arch", default="grm")
    ap.add_argument("--init-from", default="", help="start from these weights (a fine-tune)")
    ap.add_argument("--shards", default=str(ROOT / "data/shards"))
    ap.add_argument("--unseen", type=Path, default=ROOT / ".cache/unseen")
    args = ap.parse_args()
    from grm.pipeline.train import TrainSettings, train
    from grm.model_file import build
    from safetensors.torch import load_file
    train_params = dict(yaml.safe_load((ROOT / "params.yaml").read_text())["train"])
    train_params.pop("shards", None)
    overrides = dict(item.split("=", 1) for item in args.set)
    settings = TrainSettings.from_dict({**train_params, "arch": args.arch, "lmbda": 0.013, "init_from": args.init_from,
                                        **{k: parse_value(v) for k, v in overrides.items()}})
    sets = {"evaluation photos": load_photos(ROOT / "data/eval_images"), "unseen photos": load_photos(args.unseen)}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        result = train("recipe", settings, args.shards, Path(tmp) / "run")
        seconds = time.perf_counter() - t
        model = build(settings.arch, settings.model)
        model.update(force=True)
        model.load_state_dict(load_file(str(Path(tmp) / "run/weights" / f"step-{result.steps:08d}.safetensors")))
    print(f"recipe {json.dumps(overrides)}: {settings.steps} steps in {seconds:.0f} s "
          f"({settings.steps / seconds:.2f} steps/s); last validation "
          f"{result.history[-1]['bpp']:.3f} bpp {result.history[-1]['psnr']:.2f} dB")
    for name, photos in sets.items():
        if not photos:
            continue
        m = measure(model, photos)
        print(f"  {name} ({len(photos)}): {m['bpp']:.3f} bpp, {m['psnr']:.2f} dB, Δ JPEG {m['vs_jpeg']:+.2f} dB, "
              f"colour shift {m['colour_shift']:.2f} levels")
    if math.isnan(result.history[-1]["loss"]):
        sys.exit("training diverged")


if __name__ == "__main__":
    main()
