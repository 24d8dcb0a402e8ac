"""Evaluating a classic codec over a quality ladder, writing every bitstream to disk."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import numpy as np

from ..image_io import write_atomic
from .classic import get_codec
from .eval_set import mean_row
from .metrics import ms_ssim, psnr


# A JPEG or WebP photo takes milliseconds, a VVenC one seconds: a worker pays for its start
# only over a ladder of a few photos.
ITEMS_PER_WORKER = 16


def evaluate_classic(
    name: str,
    qualities: list[int],
    images: list[tuple[str, np.ndarray]],
    stream_dir: Path,
    workers: int = 0,
) -> list[dict]:
    """One entry per quality: the mean over images plus the per-image rows. The photos
    are coded one per core by worker processes (``workers``: how many; 0: one per core)."""
    from ..worker_pool import mapped, workers_for

    get_codec(name)  # an unknown name fails here, once, not in every worker
    stream_dir.mkdir(parents=True, exist_ok=True)
    items = [(q, key, rgb) for q in qualities for key, rgb in images]
    with mapped(
        _coder, (name, stream_dir), items, workers_for(len(items), ITEMS_PER_WORKER, workers)
    ) as rows:
        rows = list(rows)
    n = len(images)
    parts = [rows[i * n : (i + 1) * n] for i in range(len(qualities))]
    return [{"quality": q, "mean": mean_row(p), "images": p} for q, p in zip(qualities, parts)]


def _coder(name: str, stream_dir: Path):
    return partial(code_photo, get_codec(name), stream_dir)


def code_photo(codec, stream_dir: Path, item: tuple[int, str, np.ndarray]) -> dict:
    """Encode at one quality, write the bitstream, decode what was written, measure."""
    q, key, rgb = item
    h, w = rgb.shape[:2]
    t = time.perf_counter()
    data = codec.encode(rgb, q)
    enc_s = time.perf_counter() - t
    path = stream_dir / f"{key}-q{q}.bin"
    write_atomic(path, data)
    t = time.perf_counter()
    out = codec.decode(path.read_bytes(), (h, w))
    dec_s = time.perf_counter() - t
    size = path.stat().st_size
    return {
        "image": key,
        "quality": q,
        "bytes": size,
        "bpp": 8 * size / (h * w),
        "psnr": psnr(rgb, out),
        "ms_ssim": ms_ssim(rgb, out),
        "encode_s": enc_s,
        "decode_s": dec_s,
    }
