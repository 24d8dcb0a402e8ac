"""Evaluating a classic codec over a quality ladder, writing every bitstream to disk."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..image_io import write_atomic
from .classic import get_codec
from .eval_set import mean_row
from .metrics import ms_ssim, psnr


def evaluate_classic(
    name: str, qualities: list[int], images: list[tuple[str, np.ndarray]], stream_dir: Path
) -> list[dict]:
    """One entry per quality: the mean over images plus the per-image rows."""
    codec = get_codec(name)
    stream_dir.mkdir(parents=True, exist_ok=True)
    points = []
    for q in qualities:
        rows = []
        for key, rgb in images:
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
            rows.append(
                {
                    "image": key,
                    "quality": q,
                    "bytes": size,
                    "bpp": 8 * size / (h * w),
                    "psnr": psnr(rgb, out),
                    "ms_ssim": ms_ssim(rgb, out),
                    "encode_s": enc_s,
                    "decode_s": dec_s,
                }
            )
        points.append({"quality": q, "mean": mean_row(rows), "images": rows})
    return points
