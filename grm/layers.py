"""Building blocks: GSDN/GDN normalisation and causally masked convolutions."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .entropy_bottleneck import NonNegativeParametrizer


def channel_mix(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A 1×1 convolution with an (out, in) weight, as one matrix product.

    On CPU oneDNN runs a 1×1 convolution over large feature maps about 2× slower
    (forward + backward) than the equivalent GEMM, and GSDN has two per layer.
    """
    b, c, h, w = x.shape
    o = weight.shape[0]
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        rows = x.permute(0, 2, 3, 1).reshape(-1, c)  # the coding paths
        return torch.addmm(bias, rows, weight.t()).view(b, h, w, o).permute(0, 3, 1, 2)
    out = torch.baddbmm(
        bias.view(1, o, 1), weight.expand(b, o, c), x.contiguous().view(b, c, h * w)
    )
    return out.view(b, o, h, w)


class GSDN(nn.Module):
    """Generalized Subtractive and Divisive Normalization.

    forward:  y = (x - (b' + G' x)) / sqrt(b + G x^2)
    inverse:  x = y * sqrt(b + G y^2) + (b' + G' y)   (a learned layer, like IGDN)
    With ``subtractive=False`` this is exactly GDN / IGDN.
    """

    def __init__(
        self,
        channels: int,
        inverse: bool = False,
        subtractive: bool = True,
        beta_min: float = 1e-6,
        gamma_init: float = 0.1,
        shift_init: float = 0.1,
    ):
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
            self.gamma_shift = nn.Parameter(
                self.shift_reparam.init(shift_init * torch.eye(channels))
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Written to make as few passes over the (large) feature maps as possible:
        # the subtraction folded into the matrix (I - G'), addcmul.
        denom = channel_mix(
            torch.square(x), self.gamma_reparam(self.gamma), self.beta_reparam(self.beta)
        )
        if self.inverse:
            scale = torch.sqrt(denom)
            if not self.subtractive:
                return x * scale
            shift = channel_mix(
                x, self.shift_reparam(self.gamma_shift), self.shift_reparam(self.beta_shift)
            )
            return torch.addcmul(shift, x, scale)
        scale = torch.rsqrt(denom)
        if not self.subtractive:
            return x * scale
        eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
        centred = channel_mix(
            x, eye - self.shift_reparam(self.gamma_shift), -self.shift_reparam(self.beta_shift)
        )
        return centred * scale


def make_norm(kind: str, channels: int, inverse: bool = False) -> nn.Module:
    if kind not in ("gsdn", "gdn"):
        raise ValueError(f"norm must be 'gsdn' or 'gdn', got {kind!r}")
    return GSDN(channels, inverse=inverse, subtractive=(kind == "gsdn"))


class MaskedConv2d(nn.Conv2d):
    """Convolution that only sees causal positions in raster order.

    Type 'A' excludes the centre (used for the local context), type 'B' includes it
    (used for the reference feature, whose centre is an already decoded position).
    Not compressai.layers.MaskedConv2d: that one stores its mask in the state dict (every
    model file would carry it, and files written so far would no longer load) and zeroes
    ``weight.data`` in place at each forward, so the masked weights still get Adam
    updates between forwards; here the mask multiplies the weight inside the graph.
    ``causal_taps`` gives the serial coder the unmasked taps.
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
        offs = [
            (dy, dx)
            for dy in range(-k, k + 1)
            for dx in range(-k, k + 1)
            if self.mask[0, 0, dy + k, dx + k] > 0
        ]
        w = torch.stack([self.weight[:, :, dy + k, dx + k] for dy, dx in offs], dim=1)
        return w.reshape(self.out_channels, -1), offs
