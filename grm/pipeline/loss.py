"""Rate–distortion objective: λ·255²·MSE + bpp (or λ·(1 − MS-SSIM) + bpp)."""

from __future__ import annotations

import torch
import torch.nn as nn

from .metrics import bits


class RateDistortionLoss(nn.Module):
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
            dist = 255.0 ** 2 * mse
        else:
            from pytorch_msssim import ms_ssim
            dist = 1.0 - ms_ssim(out["x_hat"].clamp(0, 1), x, data_range=1.0)
        return {"loss": self.lmbda * dist + bpp, "bpp": bpp, "mse": mse, "distortion": dist}
