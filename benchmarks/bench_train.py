"""Training step time of grm vs compressai's mbt2018 at the same widths, batch and crop,
and the WebDataset loader's throughput against what training consumes.

    python benchmarks/bench_train.py [--config paper] [--batch 8] [--crop 256] [--steps 5] [--workers 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def step_time(model, batch: int, crop: int, steps: int) -> float:
    from grm.loss import RateDistortionLoss
    crit = RateDistortionLoss(0.01)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    x = torch.rand(batch, 3, crop, crop)
    times = []
    for i in range(steps + 1):
        t = time.perf_counter()
        out = crit(model(x), x)
        opt.zero_grad()
        (out["loss"] + model.aux_loss()).backward()
        opt.step()
        if i:                       # the first step warms up allocators and kernels
            times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def loader_rate(batch: int, crop: int, workers: int, batches: int) -> float:
    from grm.data import train_loader, write_shards
    from grm.image_io import read_image
    from grm.sample_images import bundled_photos
    folder = Path(tempfile.mkdtemp())
    images = [(k, read_image(p)[0]) for k, p in sorted(bundled_photos().items())]
    urls = [str(folder / n) for n in write_shards(images, folder, "train", 2)]
    it = train_loader(urls, crop=crop, batch_size=batch, workers=workers, seed=0)
    next(it)
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="paper")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    from grm.model import GRM, config_from
    from grm.peers import Peer
    cfg = config_from(args.config)
    torch.manual_seed(0)
    grm_s = step_time(GRM(cfg), args.batch, args.crop, args.steps)
    mbt_s = step_time(Peer("mbt2018", cfg), args.batch, args.crop, args.steps)
    print(f"widths N={cfg.N} M={cfg.M}, batch {args.batch} of {args.crop}², threads={torch.get_num_threads()}, "
          f"median of {args.steps} steps")
    print(f"grm step      {grm_s:8.3f} s")
    print(f"mbt2018 step  {mbt_s:8.3f} s")
    print(f"ratio grm/mbt2018: {grm_s / mbt_s:.2f}x")
    rate = loader_rate(args.batch, args.crop, args.workers, batches=20)
    need = args.batch / grm_s
    print(f"loader ({args.workers} worker(s)): {rate:.1f} samples/s; training consumes {need:.1f} samples/s; "
          f"ratio {rate / need:.1f}x")


if __name__ == "__main__":
    main()
