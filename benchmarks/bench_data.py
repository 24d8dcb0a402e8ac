"""Data path at the scale of real datasets: prepare throughput and memory, loader rate, resume cost.

python benchmarks/bench_data.py prepare [--n 1000] [--mp 4]  # images/s, peak RSS, 1 and 2 workers
python benchmarks/bench_data.py loader [--mp 2 6 12]     # samples/s per worker count, photo size
python benchmarks/bench_data.py resume [--step 100000]   # time to the first batch at step N
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_photos(folder: Path, n: int, megapixels: float, seed: int = 0) -> Path:
    """n JPEG photos of about this size: smooth random fields, so they compress like photos."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    w = int((megapixels * 1e6 * 4 / 3) ** 0.5) // 16 * 16
    h = w * 3 // 4
    rng = np.random.default_rng(seed)
    for i in range(n):
        small = rng.integers(0, 256, size=(h // 16, w // 16, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((w, h), Image.Resampling.BILINEAR)
        img.save(folder / f"photo{i:06d}.jpg", quality=90)
    return folder


def _prepare_child(folder: str, workers: int, out: str) -> None:
    """Run in a fresh process so its peak RSS (and its workers') is its own."""
    from grm.pipeline.prepare import PrepareSettings, prepare

    s = PrepareSettings(
        source=folder,
        val_fraction=0.01,
        eval_fraction=0.0,
        images_per_shard=64,
        workers=workers,
        min_side=32,
    )
    t = time.perf_counter()
    counts = prepare(s, Path(out), Path(out) / "shards", Path(out) / "eval", progress=False)
    seconds = time.perf_counter() - t
    print(
        json.dumps(
            {
                "seconds": seconds,
                "images": counts["found"],
                "main_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            }
        )
    )


def scratch() -> Path:
    """A temporary folder removed when the benchmark exits, failed or not (prepare's holds GBs)."""
    d = tempfile.TemporaryDirectory(prefix="grm-bench-")
    atexit.register(d.cleanup)
    return Path(d.name)


def bench_prepare(args) -> None:
    tmp = scratch()
    t = time.perf_counter()
    folder = make_photos(tmp / "photos", args.n, args.mp)
    size = sum(p.stat().st_size for p in folder.iterdir()) / 1e9
    print(
        f"{args.n} photos of {args.mp} MP ({size:.2f} GB of JPEG) made in "
        f"{time.perf_counter() - t:.0f} s"
    )
    for workers in args.workers:
        out = tmp / f"out{workers}"
        r = subprocess.run(
            [sys.executable, __file__, "_prepare", str(folder), str(workers), str(out)],
            capture_output=True,
            text=True,
            check=True,
        )
        m = json.loads(r.stdout.strip().splitlines()[-1])
        index = json.loads((out / "shards/index.json").read_text())
        digest = hashlib.sha256(json.dumps(index["sha256"], sort_keys=True).encode()).hexdigest()
        print(
            f"prepare, {workers} worker(s): {m['images'] / m['seconds']:.2f} images/s "
            f"({m['seconds']:.0f} s), peak RSS main {m['main_rss_mb']:.0f} MB, "
            f"largest worker {m['worker_rss_mb']:.0f} MB; digest of all shard sha256s "
            f"{digest[:12]}"
        )


def bench_loader(args) -> None:
    from grm.pipeline.shards import train_loader, write_shards

    tmp = scratch()
    for mp in args.mp:
        from grm.image_io import read_image

        photos = make_photos(tmp / f"p{mp}", 8, mp, seed=int(mp))
        images = [(p.stem, read_image(p)[0]) for p in sorted(photos.iterdir())]
        urls = [str(tmp / f"s{mp}" / n) for n in write_shards(images, tmp / f"s{mp}", "train", 1)]
        del images
        for workers in args.workers:
            it = train_loader(
                urls,
                crop=args.crop,
                batch_size=args.batch,
                workers=workers,
                crops_per_image=args.crops_per_image,
                shuffle_buffer=64,
                seed=0,
            )
            next(it)
            t = time.perf_counter()
            for _ in range(args.batches):
                next(it)
            rate = args.batches * args.batch / (time.perf_counter() - t)
            need = args.batch / args.gpu_step_s
            print(
                f"{mp:4.1f} MP photos, {workers} worker(s): {rate:7.1f} samples/s of {args.crop}² "
                f"({args.crops_per_image} crops per decoded photo); a {args.gpu_step_s} s GPU "
                "step of batch "
                f"{args.batch} needs {need:.0f}/s: {max(1, workers) * need / rate:.1f} workers"
            )


def bench_resume(args) -> None:
    from grm.pipeline.shards import DECODED, train_loader, write_shards

    folder = scratch()
    rng = np.random.default_rng(0)
    images = [
        (f"img{i:03d}", rng.integers(0, 256, size=(96, 96, 3), dtype=np.uint8)) for i in range(64)
    ]
    urls = [str(folder / n) for n in write_shards(images, folder, "train", 4)]
    kw = dict(crop=32, batch_size=8, crops_per_image=4, shuffle_buffer=256, seed=0)
    it = train_loader(urls, **kw)
    next(it)
    t = time.perf_counter()
    for _ in range(200):
        next(it)
    per_batch = (time.perf_counter() - t) / 200
    DECODED["images"] = 0
    t = time.perf_counter()
    next(train_loader(urls, start_step=args.step, **kw))
    first = time.perf_counter() - t
    print(
        f"resume at step {args.step:,}: first batch after {first:.3f} s, {DECODED['images']} "
        "images decoded; "
        f"replaying {args.step:,} batches would take ~{per_batch * args.step:.0f} s "
        f"({per_batch * 1e3:.2f} ms per batch measured)"
    )


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--mp", type=float, default=4.0)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.set_defaults(func=bench_prepare)
    q = sub.add_parser("loader")
    q.add_argument("--mp", type=float, nargs="+", default=[2.0, 6.0, 12.0])
    q.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    q.add_argument("--crop", type=int, default=256)
    q.add_argument("--batch", type=int, default=8)
    q.add_argument("--crops-per-image", type=int, default=4)
    q.add_argument("--batches", type=int, default=20)
    q.add_argument(
        "--gpu-step-s",
        type=float,
        default=0.25,
        help="seconds of one training step on the GPU at paper widths "
        "(measure yours with bench_train.py)",
    )
    q.set_defaults(func=bench_loader)
    r = sub.add_parser("resume")
    r.add_argument("--step", type=int, default=100_000)
    r.set_defaults(func=bench_resume)
    c = sub.add_parser("_prepare")
    c.add_argument("folder")
    c.add_argument("workers", type=int)
    c.add_argument("out")
    c.set_defaults(func=lambda a: _prepare_child(a.folder, a.workers, a.out))
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
