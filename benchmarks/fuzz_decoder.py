"""Fuzz the .grm decoder with N hostile inputs (default 10,000) and report the outcome.

    python benchmarks/fuzz_decoder.py [--n 10000] [--seed 0]

Uses a freshly initialised tiny model; every input must decode correctly or raise a
GrmError. Any other exception stops the run with the offending input saved.
"""

from __future__ import annotations

import argparse
import atexit
import resource
import time
from pathlib import Path

import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import tempfile
    from grm.codec import encode_array
    from grm.fuzz import check, mutate
    from grm.model import GRM
    from grm.model_file import load_model, save_model

    torch.manual_seed(0)
    model = GRM("tiny").eval()
    model.update(force=True)
    tmp = tempfile.TemporaryDirectory(prefix="grm-fuzz-")
    atexit.register(tmp.cleanup)
    path = Path(tmp.name) / "tiny.safetensors"
    lm = load_model(save_model(model, path, "fuzz"))
    rng = np.random.default_rng(args.seed)
    seeds = [
        encode_array(lm, rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)).data
        for h, w in [(1, 1), (16, 40), (64, 64), (70, 33), (130, 90)]
    ]
    counts = {"ok": 0, "rejected": 0}
    slowest, t0 = 0.0, time.perf_counter()
    for i in range(args.n):
        data = mutate(seeds, rng)
        try:
            outcome, seconds = check(lm, data)
        except Exception:
            bad = Path("fuzz-crash.grm")
            bad.write_bytes(data)
            print(f"input {i}: unexpected exception; saved to {bad}")
            raise
        counts[outcome] += 1
        slowest = max(slowest, seconds)
        if (i + 1) % 1000 == 0:
            rate = (i + 1) / (time.perf_counter() - t0)
            print(
                f"{i + 1}/{args.n} inputs, {rate:.0f}/s, ETA {(args.n - i - 1) / rate:.0f} s",
                flush=True,
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"inputs: {args.n}  decoded correctly: {counts['ok']}  rejected with GrmError: "
        f"{counts['rejected']}  "
        f"other exceptions: 0  slowest decode: {slowest:.3f} s  peak RSS: {peak:.0f} MiB"
    )


if __name__ == "__main__":
    main()
