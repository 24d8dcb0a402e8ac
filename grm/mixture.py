"""The discretised Gaussian mixture: training likelihood and coding tables.

Training and rate estimation use the float functions here; the coder builds its tables
with the same mixture in integers (``integer_tables``), so the rate the model is trained
on is the rate the coder spends, up to the integer model's rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

SCALE_MIN = 0.11
LOG_SCALE_MAX = 8.0
LIKELIHOOD_MIN = 1e-9
TAIL_SIGMAS = 5.0
MAX_HALF_WIDTH = 48
_SQRT1_2 = 1.0 / math.sqrt(2.0)


def split_stage(out: torch.Tensor, channels: int, dim: int) -> tuple[torch.Tensor, ...]:
    """A stage's 3M outputs along ``dim`` → (logit, mean, scale), scale bounded below."""
    logit, mean, log_scale = out.split(channels, dim=dim)
    return logit, mean, SCALE_MIN + torch.exp(log_scale.clamp(max=LOG_SCALE_MAX))


def _phi(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-x * _SQRT1_2)


def gaussian_bin_prob(v: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """P(round(X) = v) for X ~ N(mean, scale), computed on the stable side of the tail."""
    d = (v - mean).abs()
    return _phi((0.5 - d) / scale) - _phi((-0.5 - d) / scale)


def mixture_likelihood(
    v: torch.Tensor, logits: torch.Tensor, means: torch.Tensor, scales: torch.Tensor
) -> torch.Tensor:
    """Likelihood of integer-binned v under a mixture stacked on dim 0 of the params."""
    w = torch.softmax(logits, dim=0)
    p = (w * gaussian_bin_prob(v.unsqueeze(0), means, scales)).sum(0)
    return p.clamp_min(LIKELIHOOD_MIN)


@dataclass
class CodingTables:
    """What the entropy coder needs for a group of C symbols.

    probs[c] holds the mixture's integer frequencies of the L symbols offset[c] …
    offset[c]+L−1 followed by one escape bin with the remaining tail mass; a symbol outside the
    window is coded as the escape bin and then on its own with a wide quantised
    Gaussian of width ``spread[c]`` around ``centre[c]``.
    """

    probs: np.ndarray  # (C, L+1) float64 holding integers (the coder normalises)
    offsets: np.ndarray  # (C,) int32
    centre: np.ndarray  # (C,) float64
    spread: np.ndarray  # (C,) float64
