"""Building blocks: GSDN/GDN normalisation and causally masked convolutions."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from compressai.ops.parametrizers import NonNegativeParametrizer


class GSDN(nn.Module):
    """Generalized Subtractive and Divisive Normalization.

    forward:  y = (x - (b' + G' x)) / sqrt(b + G x^2)
    inverse:  x = y * sqrt(b + G y^2) + (b' + G' y)   (a learned layer, like IGDN)
    With ``subtractive=False`` this is exactly GDN / IGDN.
    """

    def __init__(self, channels: int, inverse: bool = False, subtractive: bool = True,
                 beta_min: float = 1e-6, gamma_init: float = 0.1, shift_init: float = 0.1):
        super().__init__()
        self.inverse = inverse
        self.subtractive = subtractive
        self.beta_reparam = NonNegativeParametrizer(minimum=beta_min)
        self.gamma_reparam = NonNegativeParametrizer()
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(channels)))
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma_init * torch.eye(channels)))
        if subtractive:
            self.shift_reparam = NonNegativeParametrizer()
            # beta' = 0 and gamma' = 0.1 I at init, kept non-negative like beta/gamma.
            self.beta_shift = nn.Parameter(self.shift_reparam.init(torch.zeros(channels)))
            self.gamma_shift = nn.Parameter(self.shift_reparam.init(shift_init * torch.eye(channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma).reshape(c, c, 1, 1)
        norm = torch.sqrt(F.conv2d(x * x, gamma, beta))
        if self.subtractive:
            shift_w = self.shift_reparam(self.gamma_shift).reshape(c, c, 1, 1)
            shift = F.conv2d(x, shift_w, self.shift_reparam(self.beta_shift))
        else:
            shift = None
        if self.inverse:
            out = x * norm
            return out + shift if shift is not None else out
        centred = x - shift if shift is not None else x
        return centred / norm


def make_norm(kind: str, channels: int, inverse: bool = False) -> nn.Module:
    if kind not in ("gsdn", "gdn"):
        raise ValueError(f"norm must be 'gsdn' or 'gdn', got {kind!r}")
    return GSDN(channels, inverse=inverse, subtractive=(kind == "gsdn"))


class MaskedConv2d(nn.Conv2d):
    """Convolution that only sees causal positions in raster order.

    Type 'A' excludes the centre (used for the local context), type 'B' includes it
    (used for the reference feature, whose centre is an already decoded position).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, mask_type: str):
        super().__init__(in_ch, out_ch, kernel_size, padding=kernel_size // 2)
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        mask = torch.zeros_like(self.weight)
        k = kernel_size // 2
        mask[:, :, :k, :] = 1
        mask[:, :, k, : k + (mask_type == "B")] = 1
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)

    def causal_taps(self) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """Weights as a (out, taps*in) matrix and the (dy, dx) offsets of the taps.

        The serial coder multiplies this matrix with the gathered causal neighbours,
        which skips the masked-out zeros a full convolution would compute.
        """
        k = self.kernel_size[0] // 2
        offs = [(dy, dx) for dy in range(-k, k + 1) for dx in range(-k, k + 1)
                if self.mask[0, 0, dy + k, dx + k] > 0]
        w = torch.stack([self.weight[:, :, dy + k, dx + k] for dy, dx in offs], dim=1)
        return w.reshape(self.out_channels, -1), offs
