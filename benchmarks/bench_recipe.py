"""One training recipe, measured: train a model with the trainer the pipeline uses, then
compare its rate and PSNR with JPEG's at the same bpp, and its mean colour with the
original's, on photos it never trained on. The README's recipe table comes from this.

    python benchmarks/bench_recipe.py --set crop=128 mixed_precision=bf16 steps=800 lmbda=0.013
    python benchmarks/bench_recipe.py --set lmbda=0.0483 steps=200 \\
        --init-from data/bases/grm.safetensors
    python benchmarks/bench_recipe.py --set steps=1300 lr_drop_at=1.0 \\
        --ladder 0.0035:120 0.013:120 0.0483:250

``--ladder`` measures a warm-started rate ladder the way the pipeline trains it: the
recipe above is the base, and each LAMBDA:STEPS fine-tunes from its last weights with the
params.yaml fine-tune settings (lr ÷ 10 at half its steps) and is measured in turn.

Needs prepared shards (`dvc repro prepare`). Photos: the evaluation set and, if present,
data/eval_photos/textured (``--unseen``: any folder). Rates and PSNR are the model's
own estimate on the forward pass (the real coder writes within ~1% of it: see the
evaluation JSONs' bpp_estimated), so a recipe is measured in seconds after training.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import shutil
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

from bench_quality import JPEG_QUALITIES, colour_shift, pillow_ladder, psnr_at  # noqa: E402
from grm.pipeline.prepare import centre_crop  # noqa: E402
from grm.image_io import IMAGE_SUFFIXES, read_image, to_uint8  # noqa: E402
from grm.model import GRM  # noqa: E402
from grm.pipeline.metrics import psnr  # noqa: E402


def main_rank() -> bool:
    """Under torchrun only rank 0 measures and prints (every rank trains)."""
    return int(os.environ.get("RANK", "0")) == 0


def parse_value(text: str):
    return yaml.safe_load(text)


@torch.no_grad()
def measure(model, photos) -> dict:
    """Mean estimated bpp, PSNR, Δ PSNR against JPEG at that bpp, colour shift, and the
    transforms' ceiling: the PSNR of g_s(g_a(x)) with nothing rounded (what the
    transforms keep, whatever the entropy model spends)."""
    model.eval()
    rows = []
    for _, rgb in photos:
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
        out = model(x)
        bpp = float(sum(-torch.log2(v).sum() for v in out["likelihoods"].values())) / (
            rgb.shape[0] * rgb.shape[1]
        )
        dec = to_uint8(out["x_hat"].clamp(0, 1))
        net = getattr(model, "net", model)  # a peer wraps a compressai model
        unrounded = net.g_s(net.g_a(GRM.pad(x)))[..., : rgb.shape[0], : rgb.shape[1]]
        ceiling = psnr(rgb, to_uint8(unrounded.clamp(0, 1)))
        jpeg = psnr_at(pillow_ladder(rgb, "JPEG", JPEG_QUALITIES), bpp)
        rows.append((bpp, psnr(rgb, dec), psnr(rgb, dec) - jpeg, colour_shift(rgb, dec), ceiling))
    a = np.array(rows, dtype=float)
    return {
        "bpp": float(a[:, 0].mean()),
        "psnr": float(a[:, 1].mean()),
        "vs_jpeg": float(np.nanmean(a[:, 2])),
        "colour_shift": float(a[:, 3].mean()),
        "ceiling": float(a[:, 4].mean()),
    }


def load_photos(folder: Path) -> list:
    files = (
        sorted(p for p in folder.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if folder.is_dir()
        else []
    )
    return [(p.stem, np.ascontiguousarray(centre_crop(read_image(p)[0], 512))) for p in files]


def training_photos(shards: str) -> list:
    """The photos the model trained on, measured the same way: a gap between them and the
    unseen ones would be over-fitting to the few training photos."""
    from grm.pipeline.shards import read_images, resolve_shards

    images = read_images(resolve_shards(shards, "train"))
    return [(k, np.ascontiguousarray(centre_crop(img, 512))) for k, img in images]  # torch


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="training settings over params.yaml's train section (e.g. crop=128 lmbda=0.013)",
    )
    ap.add_argument("--arch", default="grm")
    ap.add_argument("--init-from", default="", help="start from these weights (a fine-tune)")
    ap.add_argument("--shards", default=str(ROOT / "data/shards"))
    ap.add_argument("--unseen", type=Path, default=ROOT / "data/eval_photos/textured")
    ap.add_argument(
        "--ladder",
        nargs="*",
        default=[],
        metavar="LAMBDA:STEPS",
        help="then fine-tune from the recipe's weights to each λ for STEPS (a warm-started ladder)",
    )
    ap.add_argument(
        "--ladder-set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="fine-tune settings over params.yaml's (e.g. lr_drop_at=0.8 ema=0.999)",
    )
    ap.add_argument(
        "--save-base", type=Path, help="copy the recipe's last weights here (for --base)"
    )
    ap.add_argument(
        "--base",
        type=Path,
        help="measure the ladder on these weights instead of training the recipe first",
    )
    args = ap.parse_args()
    from grm.pipeline.train import TrainSettings

    train_params = dict(yaml.safe_load((ROOT / "params.yaml").read_text())["train"])
    train_params.pop("shards", None)
    overrides = dict(item.split("=", 1) for item in args.set)
    settings = TrainSettings.from_dict(
        {
            **train_params,
            "arch": args.arch,
            "lmbda": 0.013,
            "init_from": args.init_from,
            **{k: parse_value(v) for k, v in overrides.items()},
        }
    )
    sets = {
        "evaluation photos": load_photos(ROOT / "data/eval_images"),
        "unseen photos": load_photos(args.unseen),
        "training photos": training_photos(args.shards),
    }
    fine_tune = {
        k: v
        for k, v in train_params.items()
        if k in ("lr_drop_at", "lr_schedule", "val_every", "ema")
    }
    fine_tune.update(
        {k: parse_value(v) for k, v in (item.split("=", 1) for item in args.ladder_set)}
    )
    # Under torchrun every rank must train into the same folder (rank 0 writes the weights).
    run_id = os.environ.get("TORCHELASTIC_RUN_ID")
    shared = Path(tempfile.gettempdir()) / f"bench-recipe-{run_id}" if run_id else None
    with tempfile.TemporaryDirectory() if shared is None else contextlib.nullcontext(shared) as tmp:
        if args.base:
            base = args.base
            if main_rank():
                print(f"base {base}:", flush=True)
                print_measures(settings, base, sets)
        else:
            base = run_recipe("recipe", settings, overrides, args.shards, Path(tmp) / "run", sets)
            if args.save_base:
                shutil.copyfile(base, args.save_base)
        for point in args.ladder:
            lmbda, steps = point.split(":")
            child = dataclasses.replace(
                settings, **fine_tune, lmbda=float(lmbda), steps=int(steps), init_from=str(base)
            )
            child = dataclasses.replace(child, val_every=min(child.val_every, child.steps))
            run_recipe(
                f"fine-tune λ {lmbda}",
                child,
                {"lmbda": lmbda, "steps": steps, **fine_tune},
                args.shards,
                Path(tmp) / f"ft-{lmbda}",
                sets,
            )


def run_recipe(name: str, settings, overrides: dict, shards: str, out: Path, sets: dict) -> Path:
    """Train with the pipeline's trainer, print the measure on each photo set; the last weights'
    path."""
    from grm.pipeline.train import train

    t = time.perf_counter()
    result = train("recipe", settings, shards, out)
    seconds = time.perf_counter() - t
    weights = out / "weights" / f"step-{result.steps:08d}.safetensors"
    if not main_rank():
        return weights
    print(
        f"{name} {json.dumps(overrides)}: {settings.steps} steps in {seconds:.0f} s "
        f"({settings.steps / seconds:.2f} steps/s); last validation "
        f"{result.history[-1]['bpp']:.3f} bpp {result.history[-1]['psnr']:.2f} dB",
        flush=True,
    )
    print_measures(settings, weights, sets)
    if math.isnan(result.history[-1]["loss"]):
        sys.exit("training diverged")
    return weights


def print_measures(settings, weights: Path, sets: dict) -> None:
    from grm.model_file import build
    from safetensors.torch import load_file

    model = build(settings.arch, settings.model)
    model.update(force=True)
    model.load_state_dict(load_file(str(weights)))
    for set_name, photos in sets.items():
        if not photos:
            continue
        m = measure(model, photos)
        print(
            f"  {set_name} ({len(photos)}): {m['bpp']:.3f} bpp, {m['psnr']:.2f} dB, Δ JPEG "
            f"{m['vs_jpeg']:+.2f} dB, "
            f"colour shift {m['colour_shift']:.2f} levels, unrounded {m['ceiling']:.2f} dB",
            flush=True,
        )


if __name__ == "__main__":
    main()
