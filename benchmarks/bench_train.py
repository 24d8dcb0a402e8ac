"""Training step time of grm vs compressai's mbt2018 at the same widths, batch and crop,
and the WebDataset loader's throughput against what training consumes.

    python benchmarks/bench_train.py [--config paper] [--batch 8] [--crop 256] [--steps 5] \\
        [--workers 1] [--device cuda] [--loader-batches 0] [--precision bf16] [--compile]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def stepper(model, batch: int, crop: int, precision: str = "fp32", compile: bool = False):
    """One training step (forward, loss, backward, Adam) as the trainer does it (channels-last,
    bf16 autocast when asked), timed to its end on the model's device (CUDA runs asynchronously).
    ``compile``: the forward through torch.compile (its first steps pay the compilation)."""
    from grm.pipeline.loss import RateDistortionLoss
    from grm.model import device_of

    dev = device_of(model)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    crit = RateDistortionLoss(0.01)
    opt = torch.optim.Adam(model.parameters(), 1e-4, fused=True)
    model.to(memory_format=torch.channels_last)
    x = torch.rand(batch, 3, crop, crop, device=dev).contiguous(memory_format=torch.channels_last)
    bf16 = precision == "bf16"
    forward = torch.compile(model) if compile else model

    def step() -> float:
        sync()
        t = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            out = crit(forward(x), x)
        opt.zero_grad()
        (out["loss"] + model.aux_loss()).backward()
        opt.step()
        sync()
        return time.perf_counter() - t

    return step


def step_times(
    models: dict,
    batch: int,
    crop: int,
    steps: int,
    warmup: int = 2,
    precision: str = "fp32",
    compile: bool = False,
) -> tuple[dict, dict]:
    """Per-step seconds of each model, the models' steps interleaved so that a noisy
    machine slows them alike, and the seconds of the first steps, which warm up allocators
    and kernels (and compile, with ``compile``)."""
    steppers = {k: stepper(m, batch, crop, precision, compile) for k, m in models.items()}
    times = {k: [] for k in models}
    warm = {k: 0.0 for k in models}
    for i in range(warmup + steps):
        for k, step in steppers.items():
            t = step()
            if i >= warmup:
                times[k].append(t)
            else:
                warm[k] += t
    return times, warm


def median(values) -> float:
    return sorted(values)[len(values) // 2]


def loader_rate(batch: int, crop: int, workers: int, batches: int) -> float:
    from grm.pipeline.shards import train_loader, write_shards
    from grm.image_io import read_image
    from grm.pipeline.sample_images import bundled_photos

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        images = [(k, read_image(p)[0]) for k, p in sorted(bundled_photos().items())]
        urls = [str(folder / n) for n in write_shards(images, folder, "train", 2)]
        it = train_loader(urls, crop=crop, batch_size=batch, workers=workers, seed=0)
        next(it)
        t = time.perf_counter()
        for _ in range(batches):
            next(it)
        rate = batches * batch / (time.perf_counter() - t)
        del it  # stops the loader's workers before their shards go
    return rate


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", default="paper")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="bf16: autocast as the trainer does with train.mixed_precision: bf16",
    )
    ap.add_argument(
        "--compile", action="store_true", help="the forward through torch.compile (inductor)"
    )
    ap.add_argument(
        "--loader-batches", type=int, default=20, help="batches to time the loader on (0: skip)"
    )
    ap.add_argument(
        "--malloc-defaults",
        action="store_true",
        help="leave glibc malloc as it is (the trainer tunes it on CPU; see grm/allocator.py)",
    )
    args = ap.parse_args()
    from grm.pipeline.allocator import reuse_freed_memory
    from grm.model import GRM, config_from
    from grm.peers import Peer

    tuned = False if args.malloc_defaults else reuse_freed_memory()  # as the trainer does
    cfg = config_from(args.config)
    torch.manual_seed(0)
    models = {
        "grm": GRM(cfg).to(args.device),
        "mbt2018": Peer("mbt2018", args.config).to(args.device),
    }
    times, warm = step_times(
        models, args.batch, args.crop, args.steps, precision=args.precision, compile=args.compile
    )
    grm_s, mbt_s = median(times["grm"]), median(times["mbt2018"])
    ratios = [g / m for g, m in zip(times["grm"], times["mbt2018"])]
    where = (
        torch.cuda.get_device_name(args.device)
        if args.device.startswith("cuda")
        else f"cpu, threads={torch.get_num_threads()}"
    )
    print(
        f"widths N={cfg.N} M={cfg.M}, batch {args.batch} of {args.crop}², {args.precision}, "
        f"{where}, {'torch.compile, ' if args.compile else ''}"
        f"median of {args.steps} interleaved steps, malloc keeps freed memory: {tuned}"
    )
    print(
        f"first 2 steps (warm-up{', compilation' if args.compile else ''}): "
        f"grm {warm['grm']:.1f} s, mbt2018 {warm['mbt2018']:.1f} s"
    )
    print(
        f"grm step      {grm_s:8.3f} s   (min {min(times['grm']):.3f}, max {max(times['grm']):.3f})"
    )
    print(
        f"mbt2018 step  {mbt_s:8.3f} s   (min {min(times['mbt2018']):.3f}, max "
        f"{max(times['mbt2018']):.3f})"
    )
    print(
        f"ratio grm/mbt2018: {grm_s / mbt_s:.2f}x (median of per-step ratios {median(ratios):.2f}x)"
    )
    if args.loader_batches <= 0:
        return
    rate = loader_rate(args.batch, args.crop, args.workers, args.loader_batches)
    need = args.batch / grm_s
    print(
        f"loader ({args.workers} worker(s)): {rate:.1f} samples/s; training consumes {need:.1f} "
        "samples/s; "
        f"ratio {rate / need:.1f}x"
    )


if __name__ == "__main__":
    main()
