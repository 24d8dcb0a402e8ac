"""Exact integer layers: the arithmetic of the portable entropy model.

Every operand is an integer held in float64, and at export each layer's accumulator is
proved to stay below 2^53 (Σ|w|·max|input| + |bias|), so every partial sum is exact and a
matrix product gives the same integer in any summation order: any thread count, BLAS,
oneDNN or CUDA kernel. Requantisation is one correctly rounded IEEE multiply and a
round-half-even, which every IEEE-754 machine performs identically.

On a CPU the layers' products run in int8 instead (``product``): inputs are cut into
base-256 digits and the weights are int8 (models are exported with 8-bit weights; older
files' 16-bit weights are cut into two digits), each digit product is an int8 matrix
product with int32 sums (exact: at most 2^14 per term and fewer than 2^17 terms) and the
digits are put back together in int64. Same integers, an eighth of the bytes read per
weight: the decoder's sequential groups are limited by reading the weights, not by
arithmetic. Small products stay in float64 (``QLayer.int8``), faster while they sit in
cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

FRAC = 10  # activations are integers in units of 2^-FRAC
ACT_LIMIT = 1 << 22  # |activation| ≤ 4096 in real units
WEIGHT_MAX = 127  # per output channel, the largest |weight| maps to this: one int8 digit
EXACT = float(1 << 53)
SLOPE = 0.01  # nn.LeakyReLU's default negative slope


INT8 = hasattr(torch, "_int_mm")  # the int8 products (tests turn them off to compare)
INT8_TERMS = 1 << 17  # int32 sums of int8 digit products are exact below this many terms
# Products in int8 where they are faster: large layers (the decoder's groups read weights
# that do not stay in cache) and large products (the hyper synthesis: many rows).
INT8_MIN_WEIGHTS = 1 << 19
INT8_MIN_MACS = 1 << 26


def matmul(a: torch.Tensor, b: torch.Tensor, add: torch.Tensor | None = None) -> torch.Tensor:
    """a @ b (+ add) in float64: the reference way sums are formed (tests swap in another
    summation order)."""
    return torch.matmul(a, b) if add is None else torch.addmm(add, a, b)


def _digit(r: torch.Tensor) -> torch.Tensor:
    """The lowest balanced base-256 digit of int64 integers, in [-128, 127]."""
    return ((r + 128) & 255) - 128


SHIFT = 128  # two int8 digits hold [-32896, 32639]: 16-bit weights are stored less 128


@dataclass(frozen=True)
class Bytes:
    """Integers x (P, in) cut into n int8 digits, cut once for every layer that reads them:
    x + 2^(8n−1) is a non-negative integer of n bytes b_i, so x = Σ (b_i − 128)·256^i + c_n,
    c_n = 128·Σ 256^i − 2^(8n−1)."""

    digits: torch.Tensor  # (n·P, in) int8: the P rows of digit 0, then of digit 1 …
    n: int
    x: torch.Tensor  # the integers themselves (float64)

    @classmethod
    def of(cls, x: torch.Tensor) -> "Bytes":
        n, largest = 1, float(x.abs().max())
        while largest >= 2.0 ** (8 * n - 1):  # ŷ: often one digit
            n += 1
        u = (x + 2.0 ** (8 * n - 1)).to(torch.int32 if n < 4 else torch.int64)
        a = torch.empty((n, *x.shape), dtype=torch.uint8, device=x.device)
        for i in range(n):
            a[i] = (u >> (8 * i)) & 255
        return cls(a.bitwise_xor_(128).view(torch.int8).view(n * x.shape[0], -1), n, x)

    @property
    def const(self) -> int:
        return 128 * sum(256**i for i in range(self.n)) - 2 ** (8 * self.n - 1)


@dataclass(frozen=True)
class Int8Weights:
    """A layer's integer weights (out, in) as int8 digits side by side, (in, m·out), the
    layout ``torch._int_mm`` takes: one digit where every weight fits in int8 (models are
    exported with 8-bit weights), else two digits of the weights less ``SHIFT`` (the
    16-bit weights of files exported before 2026-12-05)."""

    digits: torch.Tensor  # (in, m·out) int8: low digits, then high digits
    bias: torch.Tensor  # int64
    row_sums: torch.Tensor  # Σ_in w, int64: what a constant added to every input adds
    shift: int  # 0 or SHIFT: what was taken from every weight before cutting digits

    @classmethod
    def of(cls, weight: torch.Tensor, bias: torch.Tensor) -> "Int8Weights | None":
        """None where int8 digits cannot compute the product exactly."""
        if weight.shape[1] >= INT8_TERMS:
            return None
        w = weight.long()
        if int(w.abs().max()) <= 127:
            return cls(w.t().to(torch.int8).contiguous(), bias.long(), w.sum(1), 0)
        lo = _digit(w - SHIFT)
        hi = (w - SHIFT - lo) >> 8
        if int(hi.min()) < -128 or int(hi.max()) > 127:
            return None
        digits = torch.cat([lo, hi]).t().to(torch.int8).contiguous()
        return cls(digits, bias.long(), w.sum(1), SHIFT)

    def product(self, b: Bytes) -> torch.Tensor:
        """x @ wᵀ + bias, exactly, as float64 (P, out)."""
        p, out = b.x.shape[0], self.bias.shape[0]
        parts = torch._int_mm(b.digits, self.digits)  # (n·P, m·out) int32
        acc = (self.bias + b.const * (self.row_sums - self.shift * b.x.shape[1])).expand(p, -1)
        acc = acc.clone()
        if self.shift:
            acc += self.shift * b.x.sum(1, keepdim=True).long()
        for i in range(b.n):
            rows = parts[i * p : (i + 1) * p]
            for j in range(self.digits.shape[1] // out):
                acc.add_(rows[:, j * out : (j + 1) * out], alpha=256 ** (i + j))
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

    def int8(self, x: torch.Tensor) -> Int8Weights | None:
        """The int8 digits of the weights where int8 products of x are exact and faster."""
        if not INT8 or x.device.type != "cpu":
            return None
        n = self.weight.numel()
        if n < INT8_MIN_WEIGHTS and n * x.shape[0] < INT8_MIN_MACS:
            return None
        if "int8" not in self._cache:
            self._cache["int8"] = Int8Weights.of(self.weight, self.bias)
        return self._cache["int8"]

    def product(self, x: torch.Tensor, cut: Bytes | None = None) -> torch.Tensor:
        """(P, in) integers → x @ weightᵀ + bias (accumulator units), exact: in int8
        digits on a CPU (see the module's docstring; ``cut``: x's digits, where several
        layers read the same x), else one float64 product."""
        w8 = self.int8(x)
        if w8 is None:
            return matmul(x, self.weight.t(), self.bias)
        return w8.product(cut if cut is not None else Bytes.of(x))

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
        cls,
        weight: torch.Tensor,
        bias: torch.Tensor,
        in_frac: int,
        in_limit: int,
        leaky: bool,
        weight_max: int = WEIGHT_MAX,
    ) -> "QLayer":
        """Float weights (out, in[, kh, kw]) → integer layer with output in units 2^-FRAC,
        each output channel's largest |weight| mapped to ``weight_max``."""
        w = weight.detach().double().cpu().contiguous()
        b = bias.detach().double().cpu()
        rows = w.flatten(1)
        step = rows.abs().amax(1) / weight_max
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


def _tap_products(rows: torch.Tensor, layer: QLayer):
    """(ky, kx, rows @ tap(ky, kx)ᵀ) for every tap of a convolution: all taps read the
    same rows, so their int8 digits are cut once."""
    k = layer.weight.shape[-1]
    cut = Bytes.of(rows) if layer.tap(0, 0).int8(rows) is not None else None
    for ky in range(k):
        for kx in range(k):
            yield ky, kx, layer.tap(ky, kx).product(rows, cut)


def _rows(x: torch.Tensor) -> torch.Tensor:
    """(C, H, W) → (H·W, C) float64 position rows."""
    return x.permute(1, 2, 0).reshape(-1, x.shape[0]).double()


def _conv2d(x: torch.Tensor, layer: QLayer) -> torch.Tensor:
    """Each tap multiplies the whole padded input; its product is added in shifted."""
    _, h, w = x.shape
    p = layer.weight.shape[-1] // 2
    xp = torch.nn.functional.pad(x, (p, p, p, p))
    acc = layer.bias.expand(h, w, -1).clone()  # rows, columns, channels
    for ky, kx, part in _tap_products(_rows(xp), layer):
        acc += part.view(h + 2 * p, w + 2 * p, -1)[ky : ky + h, kx : kx + w]
    return layer.requantise(acc, -1).permute(2, 0, 1).float()


def _conv_transpose2d(x: torch.Tensor, layer: QLayer) -> torch.Tensor:
    """Each tap's product is added into every other output row and column."""
    _, h, w = x.shape
    k = layer.weight.shape[-1]
    p = k // 2
    out = x.new_zeros((2 * h + k - 1, 2 * w + k - 1, layer.weight.shape[0]), dtype=torch.float64)
    for ky, kx, part in _tap_products(_rows(x), layer):
        out[ky : ky + 2 * h : 2, kx : kx + 2 * w : 2] += part.view(h, w, -1)
    acc = out[p : p + 2 * h, p : p + 2 * w] + layer.bias
    return layer.requantise(acc, -1).permute(2, 0, 1).float()


def conv2d(x: torch.Tensor, layer: QLayer, as_rows: bool = False) -> torch.Tensor:
    """Stride-1 'same' convolution of (C, H, W) integers (float32 storage, exact below
    2^24): one exact matrix product per tap."""
    return _in_bands(_conv2d, x, layer, 1, as_rows)


def conv_transpose2d(x: torch.Tensor, layer: QLayer) -> torch.Tensor:
    """Stride-2 transposed convolution (padding k//2, output padding 1) of (C, H, W):
    each tap's product is added into every other output row and column."""
    return _in_bands(_conv_transpose2d, x, layer, 2, False)
