"""Serial arithmetic coding of ŷ with the GRM entropy model.

Encoder and decoder run the very same pass (``_Pass``) over groups of positions (one
position in raster order, one wavefront in wavefront order): each group reads only
positions already coded, evaluates the integer entropy model (``integer_model``),
builds the per-symbol frequency tables and then either writes the known symbols or
reads them. Sharing the pass keeps the two in step; integer arithmetic makes the
tables the same on every machine, thread count, kernel library and batch of positions
(the encoder, knowing every symbol, evaluates hundreds of positions at once).

The symbols go through constriction's range coder, which takes the tables as numpy
arrays (no per-symbol Python objects) and quantises them deterministically.
"""

from __future__ import annotations

import constriction
import numpy as np
import torch

from .errors import DecodeError
from .integer_model import MAX_SYMBOL, IntegerEntropyModel
from . import integer_ops
from .integer_tables import CDF_BITS
from .mixture import CodingTables
from .reference import DESCRIPTOR_TAPS, SIM_MIN, decode_groups

PAD = 2  # the 5×5 context reaches two positions out


def _flat_taps(r: torch.Tensor, c: torch.Tensor, taps, stride: int) -> torch.Tensor:
    """Row indices into the flattened symbol buffer of each position's taps: (n, T)."""
    dy = torch.tensor([d for d, _ in taps], device=r.device)
    dx = torch.tensor([d for _, d in taps], device=r.device)
    return (r.unsqueeze(1) + dy) * stride + c.unsqueeze(1) + dx


CANDIDATES = 16384  # candidates compared per step: the similarity matrix stays small
CHUNK = 512  # positions the encoder evaluates together (memory ∝ CHUNK, speed ∝ batch)


def _best_reference(d, d_norm, cand, cand_norm, largest: int, limit):
    """Index and cosine of each query's most similar candidate (first one on ties), among
    the first ``limit[i]`` candidates for query i (its group's start in decoding order).

    Descriptors are integers, so their dot products are exact in float32 whenever
    Σ|query| · max|ŷ| < 2^24 (in float64 otherwise); the cosine is then one correctly
    rounded multiply and divide: the same choice on every machine. Candidates are taken
    in blocks, and a later block wins only with a strictly larger cosine, as one argmax
    over all of them would choose.
    """
    exact32 = torch.get_float32_matmul_precision() == "highest" and (
        d.shape[1] * largest * largest < 2**24 or float(d.abs().sum(1).max()) * largest < 2**24
    )
    q = d if exact32 else d.double()
    same_limit = bool((limit == limit[0]).all())
    top = int(limit.max())
    cand, cand_norm = cand[:top], cand_norm[:top]
    best = best_j = None
    for start in range(0, top, CANDIDATES):
        block = cand[start : start + CANDIDATES]
        dots = integer_ops.matmul(q, (block if exact32 else block.double()).t())
        # norms are 0 or ≥ 1: a zero descriptor has zero dot products, so 0 / 1 = 0
        denom = (d_norm.unsqueeze(1) * cand_norm[start : start + CANDIDATES].unsqueeze(0)).clamp_(
            min=1.0
        )
        cos = torch.div(dots, denom)  # float64: the float32 dots convert exactly
        if not same_limit:  # the encoder's batch spans groups: later candidates are not yet
            at = torch.arange(start, start + block.shape[0], device=cos.device)
            cos.masked_fill_(at.unsqueeze(0) >= limit.unsqueeze(1), -torch.inf)
        val, j = cos.max(1)  # the first of equal maxima, as argmax
        if best is None:
            best, best_j = val, j
        else:
            better = val > best
            best = torch.where(better, val, best)
            best_j = torch.where(better, j + start, best_j)
    return best_j, best


def _batches(sizes: list[int], batch: int) -> list[list[int]]:
    """Consecutive groups packed into batches of at most ``batch`` positions (at least one
    group each); the first group alone, as it has no reference to search."""
    out, current, count = [[sizes[0]]], [], 0
    for size in sizes[1:]:
        if current and count + size > batch:
            out.append(current)
            current, count = [], 0
        current.append(size)
        count += size
    return out + ([current] if current else [])


class _Pass:
    """One pass over the latent positions in decoding order, group by group.

    A group is one position (raster) or one wavefront. Every quantity a group needs comes
    from earlier groups only, through the integer entropy model, so encoder and decoder
    agree on every machine. Everything per position is laid out in decoding order, so a
    group is a slice. It runs on z_hat's device.

    The encoder passes ŷ (``y``, 1 × M × h × w): knowing every symbol, it evaluates the
    model ``CHUNK`` positions at a time (whole groups, each position still reading only
    earlier groups) and codes group by group; integer sums do not depend on how rows are
    batched, so its tables are the decoder's bit for bit.
    """

    def __init__(self, coder: IntegerEntropyModel, z_hat: torch.Tensor, y: torch.Tensor | None):
        device = z_hat.device
        self.coder = coder = coder.to(device)
        self.tables, layout, M = coder.tables, coder.layout, coder.M
        self.psi = coder.hyper(z_hat)  # h·w, 2M
        h, w = (n * layout.upsample for n in z_hat.shape[-2:])
        self.shape = h, w
        groups = decode_groups(h, w, layout.decode_order)
        self.sizes = [g.numel() for g in groups]
        self.order = order = torch.cat(groups).to(device)
        r, c = order // w + PAD, order % w + PAD
        stride = w + 2 * PAD
        # ŷ, channels-last, with a zero margin of PAD
        self.ybuf = torch.zeros((h + PAD) * stride, M, device=device)
        self.at_self = r * stride + c
        self.at_ctx = _flat_taps(r, c, layout.ctx_taps, stride)
        self.at_dsc = _flat_taps(r, c, DESCRIPTOR_TAPS, stride)
        self.at_ref = _flat_taps(r, c, layout.ref_taps, stride)
        self.known, self.largest = y is not None, 0
        if self.known:
            self.ybuf.index_copy_(0, self.at_self, y[0].flatten(1).t()[order].float())
            self.largest = int(y.abs().max())
        counts = torch.tensor(self.sizes, device=device)
        self.group_start = torch.repeat_interleave(counts.cumsum(0) - counts, counts)
        # Per decoded position: its descriptor and norm, and log U of its own symbols.
        if coder.reference:
            n = h * w
            self.desc = torch.zeros(n, 4 * M, device=device)
            self.norm = torch.zeros(n, dtype=torch.float64, device=device)
            self.log_conf = torch.zeros(n, dtype=torch.int64, device=device)
        self.no_ref = torch.zeros(1, 2 * M, dtype=torch.float64, device=device)
        sim_min = torch.tensor([SIM_MIN], dtype=torch.float64, device=device)
        self.first_bias = 2 * self.tables.log(sim_min)

    def _taps(self, at: torch.Tensor) -> torch.Tensor:
        return self.ybuf.index_select(0, at.flatten()).view(at.shape[0], -1)

    def confidence(self, now: slice, means, scale_idx):
        """log U of the batch's positions: the mass stage 1 gave their own symbols."""
        sym = self.ybuf.index_select(0, self.at_self[now])
        mass = self.tables.bin_prob(sym, means, scale_idx).sum(1)
        self.log_conf[now] = self.tables.log(mass.double() / (self.coder.M << CDF_BITS))

    def reference(self, now: slice, stage1):
        """φ_ref and the reference stage's logit bias (log S + log U) of a batch."""
        d = self._taps(self.at_dsc[now])
        self.desc[now] = d
        self.norm[now] = torch.sqrt(d.double().square().sum(1))
        if self.known:  # later groups of the batch may refer to its earlier ones
            self.confidence(now, stage1[1][0], stage1[2][0])
        if now.start == 0:  # the first group: nothing to refer to
            p = d.shape[0]
            return self.no_ref.expand(p, -1), self.first_bias.expand(p)
        j, sim = _best_reference(
            d, self.norm[now], self.desc, self.norm, self.largest, self.group_start[now]
        )
        phi_ref = self.coder.reference_feature(self._taps(self.at_ref.index_select(0, j)))
        return phi_ref, self.tables.log(sim) + self.log_conf.index_select(0, j)

    def parameters(self, now: slice):
        """The mixture's (logits, means, σ indices), each (3, P, M), of a batch."""
        coder = self.coder
        phi_loc = coder.local(self._taps(self.at_ctx[now]))
        stage1 = coder.stages(phi_loc, nets=(0,))  # what confidence U needs
        phi_ref, bias = self.no_ref.expand(phi_loc.shape[0], -1), None
        if coder.reference:
            phi_ref, bias = self.reference(now, stage1)
        rest = coder.stages(phi_loc, phi_ref, self.psi.index_select(0, self.order[now]), (1, 2))
        logits, means, scale_idx = (torch.cat(pair) for pair in zip(stage1, rest))
        if bias is not None:
            logits[1] += bias.unsqueeze(1)
        return logits, means, scale_idx

    def run(self, code_group) -> torch.Tensor:
        """``code_group(index, tables)`` writes or reads a group's symbols and returns them
        as a (P, M) tensor; the result is ŷ, 1 × M × h × w."""
        done = 0
        for batch in _batches(self.sizes, CHUNK if self.known else 1):
            now = slice(done, done + sum(batch))
            logits, means, scale_idx = self.parameters(now)
            start = 0
            for size in batch:
                at, group = slice(start, start + size), slice(done + start, done + start + size)
                t = self.tables.coding_tables(
                    logits[:, at].reshape(3, -1),
                    means[:, at].reshape(3, -1),
                    scale_idx[:, at].reshape(3, -1),
                    self.coder.only_last,
                )
                sym = code_group(self.order[group], t).to(self.ybuf.device)
                self.ybuf.index_copy_(0, self.at_self[group], sym)
                self.largest = max(self.largest, int(sym.abs().max()))
                start += size
            if self.coder.reference and not self.known:
                self.confidence(now, means[0], scale_idx[0])
            done = now.stop
        h, w = self.shape
        grid = self.ybuf.view(h + PAD, w + 2 * PAD, -1)[PAD:, PAD : PAD + w]
        return grid.permute(2, 0, 1).unsqueeze(0).contiguous()


def _check_single(z_hat: torch.Tensor):
    if z_hat.shape[0] != 1:
        raise ValueError("the coder works on one image at a time")


def _models():
    m = constriction.stream.model
    return m.Categorical(perfect=False), m.QuantizedGaussian(-MAX_SYMBOL, MAX_SYMBOL)


def _window_symbols(values: np.ndarray, t: CodingTables) -> tuple[np.ndarray, np.ndarray]:
    """Symbols as window indices, and the mask of those that take the escape bin."""
    length = t.probs.shape[1] - 1
    idx = values - t.offsets
    escaped = (idx < 0) | (idx >= length)
    return np.where(escaped, length, idx).astype(np.int32), escaped


@torch.inference_mode()
def encode_latents(coder: IntegerEntropyModel, y_sym: torch.Tensor, z_hat: torch.Tensor) -> bytes:
    """ŷ (clamped to ±MAX_SYMBOL by the caller) → bytes."""
    _check_single(z_hat)
    enc = constriction.stream.queue.RangeEncoder()
    window, wide = _models()
    flat = y_sym[0].flatten(1).t()  # HW, M (a view: no copy of ŷ)

    def write(idx, t: CodingTables):
        sym = flat[idx] + 0.0  # +0.0 turns -0 into 0
        values = sym.flatten().cpu().numpy().astype(np.int32)
        symbols, escaped = _window_symbols(values, t)
        enc.encode(symbols, window, t.probs)
        if escaped.any():
            enc.encode(values[escaped], wide, t.centre[escaped], t.spread[escaped])
        return sym

    _Pass(coder, z_hat, y_sym).run(write)
    return enc.get_compressed().astype("<u4").tobytes()


@torch.inference_mode()
def decode_latents(coder: IntegerEntropyModel, data: bytes, z_hat: torch.Tensor) -> torch.Tensor:
    _check_single(z_hat)
    if len(data) % 4:
        raise DecodeError("corrupt ŷ stream (length is not a whole number of 32-bit words)")
    dec = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
    window, wide = _models()

    def read(idx, t: CodingTables):
        try:
            symbols = dec.decode(window, t.probs)
            escaped = symbols == t.probs.shape[1] - 1
            values = symbols.astype(np.int64) + t.offsets
            if escaped.any():
                values[escaped] = dec.decode(wide, t.centre[escaped], t.spread[escaped])
        except (AssertionError, ValueError) as e:
            raise DecodeError(f"corrupt ŷ stream ({e})") from None
        return torch.from_numpy(values.astype(np.float32)).view(idx.numel(), -1)

    return _Pass(coder, z_hat, None).run(read)
