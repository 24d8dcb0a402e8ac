"""Rate–distortion objective: λ·255²·MSE + bpp (or λ·(1 − MS-SSIM) + bpp)."""

from __future__ import annotations

import torch
import torch.nn as nn

from .metrics import bits


class RateDistortionLoss(nn.Module):
    """compressai.losses.RateDistortionLoss's objective, kept as our own for three reasons:
    MS-SSIM is taken of the clamped reconstruction (pytorch_msssim expects [0, 1], and an
    unclamped x̂ early in training gives it negative means), the MSE is returned for
    either metric (validation and MLflow log PSNR), and the rate is -log2 summed once
    rather than log / -log 2 per tensor, which would move every trained weight by float
    rounding and so every published figure. The formulas are compressai's."""

    def __init__(self, lmbda: float, metric: str = "mse"):
        super().__init__()
        if metric not in ("mse", "ms-ssim"):
            raise ValueError(f"metric must be 'mse' or 'ms-ssim', got {metric!r}")
        self.lmbda, self.metric = float(lmbda), metric

    def forward(self, out: dict, x: torch.Tensor) -> dict:
        n, _, h, w = x.shape
        bpp = bits(out["likelihoods"]) / (n * h * w)
        mse = torch.mean((out["x_hat"] - x) ** 2)
        if self.metric == "mse":
            dist = 255.0**2 * mse
        else:
            from pytorch_msssim import ms_ssim

            dist = 1.0 - ms_ssim(out["x_hat"].clamp(0, 1), x, data_range=1.0)
        return {"loss": self.lmbda * dist + bpp, "bpp": bpp, "mse": mse, "distortion": dist}
