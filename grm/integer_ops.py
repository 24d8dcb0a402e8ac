"""Exact integer layers: the arithmetic of the portable entropy model.

Every operand is an integer held in float64, and at export each layer's accumulator is
proved to stay below 2^53 (Σ|w|·max|input| + |bias|), so every partial sum is exact and a
matrix product gives the same integer in any summation order: any thread count, BLAS,
oneDNN or CUDA kernel. Requantisation is one correctly rounded IEEE multiply and a
round-half-even, which every IEEE-754 machine performs identically.

On a CPU the layers' products run in int8 instead (``product``): weights and inputs are
cut into base-256 digits, each digit product is an int8 matrix product with int32 sums
(exact: at most 2^14 per term and fewer than 2^17 terms) and the digits are put back
together in int64. Same integers, a quarter of the bytes read per weight: the decoder's
sequential groups are limited by reading the weights, not by arithmetic. Layers under
``INT8_MIN_WEIGHTS`` weights stay in float64, faster while they sit in cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

FRAC = 10  # activations are integers in units of 2^-FRAC
ACT_LIMIT = 1 << 22  # |activation| ≤ 4096 in real units
WEIGHT_MAX = (1 << 15) - 1  # per output channel, the largest |weight| maps to this
EXACT = float(1 << 53)
SLOPE = 0.01  # nn.LeakyReLU's default negative slope


INT8 = hasattr(torch, "_int_mm")  # the int8 products (tests turn them off to compare)
INT8_TERMS = 1 << 17  # int32 sums of int8 digit products are exact below this many terms
INT8_MIN_WEIGHTS = 1 << 19  # smaller layers stay in cache: float64 is faster there


def matmul(a: torch.Tensor, b: torch.Tensor, add: torch.Tensor | None = None) -> torch.Tensor:
    """a @ b (+ add) in float64: the reference way sums are formed (tests swap in another
    summation order)."""
    return torch.matmul(a, b) if add is None else torch.addmm(add, a, b)


def _digit(r: torch.Tensor) -> torch.Tensor:
    """The lowest balanced base-256 digit of int64 integers, in [-128, 127]."""
    return ((r + 128) & 255) - 128


SHIFT = 128  # two int8 digits hold [-32896, 32639]: weights are stored less 128


@dataclass(frozen=True)
class Int8Weights:
    """A layer's integer weights (out, in) less ``SHIFT``, as their two int8 digits side
    by side, (in, 2·out), the layout ``torch._int_mm`` takes."""

    digits: torch.Tensor  # (in, 2·out) int8: low digits, then high digits
    bias: torch.Tensor  # int64
    row_sums: torch.Tensor  # Σ_in w, int64: what a constant added to every input adds

    @classmethod
    def of(cls, weight: torch.Tensor, bias: torch.Tensor) -> "Int8Weights | None":
        """None where int8 digits cannot compute the product exactly."""
        w = weight.long() - SHIFT
        lo = _digit(w)
        hi = (w - lo) >> 8
        if w.shape[1] >= INT8_TERMS or int(hi.min()) < -128 or int(hi.max()) > 127:
            return None
        digits = torch.cat([lo, hi]).t().to(torch.int8).contiguous()
        return cls(digits, bias.long(), weight.long().sum(1))

    def product(self, x: torch.Tensor) -> torch.Tensor:
        """(P, in) integers (float64) → x @ wᵀ + bias, exactly, as float64.

        x + 2^(8n−1) is a non-negative integer of n bytes b_i, so x = Σ (b_i − 128)·256^i
        + c_n: the digits are bytes moved down by 128 (int8), c_n a constant whose product
        with the weights is c_n · Σ_in w."""
        p, out = x.shape[0], self.bias.shape[0]
        n, largest = 1, float(x.abs().max())
        while largest >= 2.0 ** (8 * n - 1):  # ŷ: often one digit
            n += 1
        u = (x + 2.0 ** (8 * n - 1)).to(torch.int32 if n < 4 else torch.int64)
        a = torch.empty((n, *x.shape), dtype=torch.uint8, device=x.device)
        for i in range(n):
            a[i] = (u >> (8 * i)) & 255
        a = a.bitwise_xor_(128).view(torch.int8).view(n * p, -1)  # b − 128
        parts = torch._int_mm(a, self.digits)  # (n·P, 2·out) int32
        const = 128 * sum(256**i for i in range(n)) - 2 ** (8 * n - 1)
        acc = (self.bias + const * (self.row_sums - SHIFT * x.shape[1])).expand(p, -1).clone()
        acc += SHIFT * x.sum(1, keepdim=True).long()  # the weights were stored less SHIFT
        for i in range(n):
            rows = parts[i * p : (i + 1) * p]
            acc.add_(rows[:, :out], alpha=256**i).add_(rows[:, out:], alpha=256 ** (i + 1))
        return acc.double()


@dataclass
class QLayer:
    """A linear or convolution layer with integer weights.

    weight (out, in) or (out, in, kh, kw); bias in accumulator units; ``mult`` maps an
    accumulator to output units, ``mult_neg`` does the same for negative accumulators
    (the LeakyReLU slope folded in; equal to ``mult`` for a linear output).
    """

    weight: torch.Tensor
    bias: torch.Tensor
    mult: torch.Tensor
    mult_neg: torch.Tensor
    leaky: bool = field(init=False)
    _cache: dict = field(init=False, default_factory=dict, repr=False)

    def product(self, x: torch.Tensor) -> torch.Tensor:
        """(P, in) integers → x @ weightᵀ + bias (accumulator units), exact: in int8
        digits on a CPU (see the module's docstring), else one float64 product."""
        if INT8 and x.device.type == "cpu" and self.weight.numel() >= INT8_MIN_WEIGHTS:
            if "int8" not in self._cache:
                self._cache["int8"] = Int8Weights.of(self.weight, self.bias)
            if self._cache["int8"] is not None:
                return self._cache["int8"].product(x)
        return matmul(x, self.weight.t(), self.bias)

    def tap(self, ky: int, kx: int) -> "QLayer":
        """A convolution's tap (ky, kx) as a linear layer without bias."""
        key = ("tap", ky, kx)
        if key not in self._cache:
            w = self.weight[:, :, ky, kx]
            self._cache[key] = QLayer(w, w.new_zeros(w.shape[0]), self.mult, self.mult_neg)
        return self._cache[key]

    def __post_init__(self):
        if bool((self.mult_neg > self.mult).any()):
            raise ValueError(
                "an entropy-model layer has a negative-side multiplier above its positive one"
            )
        self.leaky = not torch.equal(self.mult, self.mult_neg)

    @classmethod
    def quantise(
        cls, weight: torch.Tensor, bias: torch.Tensor, in_frac: int, in_limit: int, leaky: bool
    ) -> "QLayer":
        """Float weights (out, in[, kh, kw]) → integer layer with output in units 2^-FRAC."""
        w = weight.detach().double().cpu().contiguous()
        b = bias.detach().double().cpu()
        rows = w.flatten(1)
        step = rows.abs().amax(1) / WEIGHT_MAX
        step = torch.where(step > 0, step, torch.ones_like(step))
        shape = (-1,) + (1,) * (w.dim() - 1)
        w_int = torch.round(w / step.view(shape))
        acc_unit = step * 2.0**-in_frac  # real value of one accumulator unit
        b_int = torch.round(b / acc_unit)
        bound = w_int.flatten(1).abs().sum(1) * in_limit + b_int.abs()
        if float(bound.max()) >= EXACT:
            raise ValueError(
                "an entropy-model layer could overflow exact float64 sums; "
                "its weights or inputs are too large to export"
            )
        mult = acc_unit * 2.0**FRAC
        return cls(w_int, b_int, mult, mult * SLOPE if leaky else mult)

    def requantise(self, acc: torch.Tensor, dim: int) -> torch.Tensor:
        """acc (consumed) → output units; channels on axis 0 (maps) or -1 (rows)."""
        if dim == 0:
            shape = (-1,) + (1,) * (acc.dim() - 1)
            return requantise(acc, self.mult.view(shape), self.mult_neg.view(shape), self.leaky)
        return requantise(acc, self.mult, self.mult_neg, self.leaky)

    # -- storage: small integer weights, exact scalars ---------------------------------
    def tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        return {
            f"{prefix}.weight": self.weight.to(torch.int16),
            f"{prefix}.bias": self.bias.to(torch.int64),
            f"{prefix}.mult": self.mult.clone(),
            f"{prefix}.mult_neg": self.mult_neg.clone(),
        }

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor], prefix: str) -> "QLayer":
        return cls(
            t[f"{prefix}.weight"].double(),
            t[f"{prefix}.bias"].double(),
            t[f"{prefix}.mult"].double(),
            t[f"{prefix}.mult_neg"].double(),
        )

    def to(self, device) -> "QLayer":
        return QLayer(*(x.to(device) for x in (self.weight, self.bias, self.mult, self.mult_neg)))


def requantise(
    acc: torch.Tensor, mult: torch.Tensor, neg: torch.Tensor, leaky: bool
) -> torch.Tensor:
    """Accumulators (consumed) → output units: one correctly rounded multiply by ``mult``
    (``neg`` for negative accumulators: the LeakyReLU), round half to even, clamp.
    The multipliers broadcast against acc's trailing axes."""
    if leaky:  # mult ≥ neg: the larger product is the one for acc's sign
        acc = torch.maximum(acc * mult, acc.mul_(neg))
    else:
        acc.mul_(mult)
    return acc.round_().clamp_(-ACT_LIMIT, ACT_LIMIT)


def linear(x: torch.Tensor, layer: QLayer) -> torch.Tensor:
    """(P, in) integers → (P, out) integers."""
    return layer.requantise(layer.product(x), -1)


BAND = 16  # input rows per step of a convolution: memory does not grow with the image


def _in_bands(op, x: torch.Tensor, layer: QLayer, up: int, as_rows: bool) -> torch.Tensor:
    """op over (C, H, W) in bands of BAND input rows, each read with a margin of rows that
    covers the kernel; ``up`` output rows per input row. Sums are exact integers, so each
    band's rows equal those of the whole-image product bit for bit. ``as_rows`` returns
    (H'·W', C') position rows, filled band by band (no full-size transposed copy)."""
    h = x.shape[1]
    margin = layer.weight.shape[-1] // 2
    out = None
    for r0 in range(0, h, BAND):
        r1 = min(h, r0 + BAND)
        a0, a1 = max(0, r0 - margin), min(h, r1 + margin)
        part = op(x[:, a0:a1], layer)[:, (r0 - a0) * up : (r1 - a0) * up]
        if out is None:
            shape = (
                (h * up * part.shape[2], part.shape[0])
                if as_rows
                else (part.shape[0], h * up, part.shape[2])
            )
            out = torch.empty(shape, dtype=part.dtype, device=part.device)
        if as_rows:
            first, n = r0 * up * part.shape[2], part.shape[1] * part.shape[2]
            out[first : first + n] = part.flatten(1).t()
        else:
            out[:, r0 * up : r1 * up] = part
    return out


def _conv2d(x: torch.Tensor, layer: QLayer) -> torch.Tensor:
    c, h, w = x.shape
    k = layer.weight.shape[-1]
    p = k // 2
    xp = torch.nn.functional.pad(x, (p, p, p, p))
    acc = layer.bias.view(1, -1).expand(h * w, -1).clone()  # positions, channels
    for ky in range(k):
        for kx in range(k):
            acc += layer.tap(ky, kx).product(
                xp[:, ky : ky + h, kx : kx + w].reshape(c, -1).t().double()
            )
    return layer.requantise(acc, -1).t().reshape(-1, h, w).float()


def _conv_transpose2d(x: torch.Tensor, layer: QLayer) -> torch.Tensor:
    c, h, w = x.shape
    k = layer.weight.shape[-1]
    p = k // 2
    out = torch.zeros(
        layer.weight.shape[0], 2 * h + k - 1, 2 * w + k - 1, dtype=torch.float64, device=x.device
    )
    rows = x.reshape(c, -1).t().double()
    for ky in range(k):
        for kx in range(k):
            part = layer.tap(ky, kx).product(rows).t().reshape(-1, h, w)
            out[:, ky : ky + 2 * h : 2, kx : kx + 2 * w : 2] += part
    acc = out[:, p : p + 2 * h, p : p + 2 * w] + layer.bias.view(-1, 1, 1)
    return layer.requantise(acc, 0).float()


def conv2d(x: torch.Tensor, layer: QLayer, as_rows: bool = False) -> torch.Tensor:
    """Stride-1 'same' convolution of (C, H, W) integers (float32 storage, exact below
    2^24): one exact matrix product per tap."""
    return _in_bands(_conv2d, x, layer, 1, as_rows)


def conv_transpose2d(x: torch.Tensor, layer: QLayer) -> torch.Tensor:
    """Stride-2 transposed convolution (padding k//2, output padding 1) of (C, H, W):
    each tap's product is added into every other output row and column."""
    return _in_bands(_conv_transpose2d, x, layer, 2, False)
