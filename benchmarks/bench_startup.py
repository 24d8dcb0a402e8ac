"""Cold wall time of the codec's commands, each a fresh process, beside a bare torch import.

    python benchmarks/bench_startup.py [--model FILE] [--size 768x512] [--repeat 3]

What a user waits for: `grm --version`, then `grm compress` and `grm decompress` of one
photo, and the imports every stage process pays (`import grm.model`). Without --model an
untrained compact model is written (timing depends on the widths, hardly on the weights);
pass the default run's `data/models/grm-q2.safetensors` for the figure of record. Best of
--repeat; run it on an idle machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def wall(cmd: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        best = min(best, time.perf_counter() - t)
    return best


def batch_photos(width: int, height: int, n: int):
    """n different photos of the given size: the bundled ones, mirrored when they run out."""
    from PIL import Image, ImageOps
    from grm.pipeline.sample_images import bundled_photos

    photos = [Image.open(p).convert("RGB") for _, p in sorted(bundled_photos().items())]
    for i in range(n):
        img = ImageOps.fit(photos[i % len(photos)], (width, height))
        yield ImageOps.mirror(img) if (i // len(photos)) % 2 else img


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--size", default="768x512")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=24, help="photos in the folder run (0: none)")
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    from bench_codec import photo_image, untrained_grm

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photo_image(w, h).save(tmp / "photo.png")
        model = args.model
        if model is None:
            from grm.model_file import save_model

            model = save_model(untrained_grm("compact"), tmp / "grm-compact.safetensors", "bench")
        py, grm = str(sys.executable), str(BIN / "grm")
        rows = [
            ("python -c 'import torch'", [py, "-c", "import torch"]),
            ("python -c 'import grm.model' (every stage)", [py, "-c", "import grm.model"]),
            ("grm --version", [grm, "--version"]),
            (
                f"grm compress ({w}x{h})",
                [
                    grm,
                    "compress",
                    str(tmp / "photo.png"),
                    str(tmp / "p.grm"),
                    "--model",
                    str(model),
                ],
            ),
            (
                f"grm decompress ({w}x{h})",
                [grm, "decompress", str(tmp / "p.grm"), str(tmp / "d.png"), "--model", str(model)],
            ),
        ]
        print(f"model: {model if args.model else 'untrained compact'}; best of {args.repeat}")
        print(f"{'command':48s} {'wall s':>7s}")
        for label, cmd in rows:
            print(f"{label:48s} {wall(cmd, args.repeat):7.2f}", flush=True)
        if args.batch:
            folder = tmp / "photos"
            folder.mkdir()
            for i, img in enumerate(batch_photos(w, h, args.batch)):
                img.save(folder / f"{i:03d}.png")
            cmd = [grm, "compress", str(folder), "-o", str(tmp / "coded"), "--model", str(model)]
            s = wall(cmd, 1)
            label = f"grm compress photos/ ({args.batch} photos)"
            print(f"{label:48s} {s:7.2f}  ({s / args.batch:.2f} s a photo)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
