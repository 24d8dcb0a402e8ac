"""Real-bitstream evaluation: compress, decompress, check, measure."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from ..codec import decode_bytes, encode_array
from ..errors import DecodeError
from ..image_io import to_tensor, write_png
from ..model_file import LoadedModel
from .eval_set import REFERENCE_STATS
from .metrics import bits, ms_ssim, psnr

log = logging.getLogger("grm.evaluate")


def evaluate_model(
    lm: LoadedModel, images: list[tuple[str, np.ndarray]], decoded_dir: Path | None = None
) -> list[dict]:
    """One row per image: actual and estimated bpp, PSNR, MS-SSIM, timings, bit-exactness;
    the decoded images go to ``decoded_dir`` as PNG (the report shows crops of them)."""
    from tqdm.auto import tqdm

    rows = []
    if decoded_dir is not None:
        Path(decoded_dir).mkdir(parents=True, exist_ok=True)
    for key, rgb in tqdm(images, desc=f"evaluate {lm.name}", unit="img", mininterval=2.0):
        h, w = rgb.shape[:2]
        enc = encode_array(lm, rgb)
        t = time.perf_counter()
        out, y_dec = decode_bytes(lm, enc.data)
        dec_s = time.perf_counter() - t
        if not torch.equal(y_dec, enc.y_symbols):
            raise DecodeError(f"{key}: decoded latents differ from the encoder's")
        if decoded_dir is not None:
            write_png(Path(decoded_dir) / f"{key}.png", out)
        with torch.no_grad():
            forward = lm.model(to_tensor(rgb))
        est = float(bits(forward["likelihoods"]))
        usage = {k: v for k, v in forward.get("stats", {}).items() if k in REFERENCE_STATS}
        rows.append(
            {
                "image": key,
                "width": w,
                "height": h,
                "bytes": len(enc.data),
                "bpp": 8 * len(enc.data) / (h * w),
                "bpp_estimated": est / (h * w),
                "psnr": psnr(rgb, out),
                "ms_ssim": ms_ssim(rgb, out),
                "encode_s": enc.seconds,
                "decode_s": dec_s,
                "bit_exact": True,
                **usage,
            }
        )
        log.info(
            "%s %s: %.4f bpp (est %.4f), %.2f dB, enc %.2fs dec %.2fs",
            lm.name,
            key,
            rows[-1]["bpp"],
            rows[-1]["bpp_estimated"],
            rows[-1]["psnr"],
            enc.seconds,
            dec_s,
        )
    return rows
