"""Quality and rate measures shared by training, evaluation and the report."""

from __future__ import annotations

import math

import numpy as np
import torch

MS_SSIM_MIN_SIDE = 161  # five scales of an 11-tap window need this many pixels


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM of two uint8 images; NaN when the image is too small for five scales."""
    from pytorch_msssim import ms_ssim as _ms_ssim

    if min(a.shape[:2]) < MS_SSIM_MIN_SIDE:
        return float("nan")
    ta = torch.from_numpy(a).permute(2, 0, 1)[None].double()
    tb = torch.from_numpy(b).permute(2, 0, 1)[None].double()
    return float(_ms_ssim(ta, tb, data_range=255.0))


def bits(likelihoods: dict) -> torch.Tensor:
    """Total estimated bits of a batch from the model's likelihoods."""
    return sum(-torch.log2(p).sum() for p in likelihoods.values())
