"""The discretised Gaussian mixture: training likelihood and coding CDFs.

Both paths read the same (logits, means, scales) tensors, so the rate the model is
trained on is the rate the coder spends (up to 16-bit CDF quantisation).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SCALE_MIN = 0.11
LOG_SCALE_MAX = 8.0
LIKELIHOOD_MIN = 1e-9
CDF_PRECISION = 16
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


def mixture_likelihood(v: torch.Tensor, logits: torch.Tensor, means: torch.Tensor,
                       scales: torch.Tensor) -> torch.Tensor:
    """Likelihood of integer-binned v under a mixture stacked on dim 0 of the params."""
    w = torch.softmax(logits, dim=0)
    p = (w * gaussian_bin_prob(v.unsqueeze(0), means, scales)).sum(0)
    return p.clamp_min(LIKELIHOOD_MIN)


def coding_cdfs(logits: torch.Tensor, means: torch.Tensor, scales: torch.Tensor):
    """Per-symbol quantised CDF tables for one position (components × channels).

    Returns (cdf [C, L+2] int, offsets [C] int, length L+2). Each channel gets a window
    of L symbols centred on its mixture mean plus one escape symbol holding the tail
    mass, which compressai's rANS codes with bypass bits; every symbol has frequency
    at least 1 so any integer stays codable.
    """
    w = torch.softmax(logits, dim=0)                                   # K, C
    centre = torch.round((w * means).sum(0))                           # C
    reach = ((means - centre).abs() + TAIL_SIGMAS * scales).amax(0)    # C
    half = int(min(MAX_HALF_WIDTH, max(1, math.ceil(float(reach.max())))))
    length = 2 * half + 1
    edges = centre.unsqueeze(1) + (torch.arange(length + 1, dtype=means.dtype) - half - 0.5)
    cum = _phi((edges.unsqueeze(0) - means.unsqueeze(-1)) / scales.unsqueeze(-1))   # K, C, L+1
    pmf = (w.unsqueeze(-1) * (cum[..., 1:] - cum[..., :-1])).sum(0).clamp_min(0)  # C, L
    tail = (1.0 - pmf.sum(1, keepdim=True)).clamp_min(0)
    probs = torch.cat([pmf, tail], dim=1)
    probs = probs / probs.sum(1, keepdim=True)
    nsym = length + 1
    total = 1 << CDF_PRECISION
    freq = 1 + torch.floor(probs.double() * (total - nsym)).long()
    spare = total - freq.sum(1)
    freq[torch.arange(freq.shape[0]), probs.argmax(1)] += spare
    cdf = F.pad(torch.cumsum(freq, 1), (1, 0))
    return cdf, (centre.long() - half), length + 2
