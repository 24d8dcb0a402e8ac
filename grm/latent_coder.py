"""Serial arithmetic coding of ŷ with the GRM entropy model.

Encoder and decoder run the very same ``_run`` loop over groups of positions (one
position in raster order, one wavefront in wavefront order): each group reads only
positions already coded, evaluates the integer entropy model (``integer_model``),
builds the per-symbol frequency tables and then either writes the known symbols or
reads them. Sharing the loop keeps the two in step; integer arithmetic makes the
tables the same on every machine, thread count and kernel library.

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


def _best_reference(d, d_norm, cand, cand_norm, largest: int):
    """Index and cosine of each query's most similar candidate (first one on ties).

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
    best = best_j = None
    for start in range(0, cand.shape[0], CANDIDATES):
        block = cand[start : start + CANDIDATES]
        dots = integer_ops.matmul(q, (block if exact32 else block.double()).t())
        # norms are 0 or ≥ 1: a zero descriptor has zero dot products, so 0 / 1 = 0
        denom = (d_norm.unsqueeze(1) * cand_norm[start : start + CANDIDATES].unsqueeze(0)).clamp_(
            min=1.0
        )
        cos = torch.div(dots, denom)  # float64: the float32 dots convert exactly
        val, j = cos.max(1)  # the first of equal maxima, as argmax
        if best is None:
            best, best_j = val, j
        else:
            better = val > best
            best = torch.where(better, val, best)
            best_j = torch.where(better, j + start, best_j)
    return best_j, best


def _run(coder: IntegerEntropyModel, z_hat: torch.Tensor, code_group) -> torch.Tensor:
    """Visit the latent positions group by group in decoding order.

    A group is one position (raster) or one wavefront; ``code_group(index, tables)``
    writes or reads the symbols of a group and returns them as a (P, M) tensor. Every
    quantity a group needs comes from earlier groups only, through the integer entropy
    model, so encoder and decoder agree on every machine. It runs on z_hat's device.
    """
    device = z_hat.device
    coder = coder.to(device)
    tables, layout = coder.tables, coder.layout
    M = coder.M
    psi = coder.hyper(z_hat)  # h·w, 2M
    h, w = (n * layout.upsample for n in z_hat.shape[-2:])
    n = h * w
    groups = decode_groups(h, w, layout.decode_order)
    # Everything per position is laid out in decoding order, so a group is a slice.
    sizes = [g.numel() for g in groups]
    order = torch.cat(groups).to(device)
    r, c = order // w + PAD, order % w + PAD
    stride = w + 2 * PAD
    ybuf = torch.zeros((h + PAD) * stride, M, device=device)  # ŷ, channels-last, zero margin of PAD
    at_self = r * stride + c
    at_ctx = _flat_taps(r, c, layout.ctx_taps, stride)
    at_dsc = _flat_taps(r, c, DESCRIPTOR_TAPS, stride)
    at_ref = _flat_taps(r, c, layout.ref_taps, stride)
    # Per decoded position: its descriptor and norm, and log U of its own symbols.
    if coder.reference:
        desc = torch.zeros(n, 4 * M, device=device)
        norm = torch.zeros(n, dtype=torch.float64, device=device)
        log_conf = torch.zeros(n, dtype=torch.int64, device=device)
    no_ref = torch.zeros(1, 2 * M, dtype=torch.float64, device=device)
    first_bias = 2 * tables.log(torch.tensor([SIM_MIN], dtype=torch.float64, device=device))
    largest, done = 0, 0
    for p in sizes:
        now = slice(done, done + p)
        idx = order[now]
        phi_loc = coder.local(ybuf.index_select(0, at_ctx[now].flatten()).view(p, -1))
        phi_ref, bias = no_ref.expand(p, -1), None
        if coder.reference:
            d = ybuf.index_select(0, at_dsc[now].flatten()).view(p, -1)
            desc[now] = d
            norm[now] = torch.sqrt(d.double().square().sum(1))
            if done > 0:
                j, sim = _best_reference(d, norm[now], desc[:done], norm[:done], largest)
                bias = tables.log(sim) + log_conf.index_select(0, j)
                phi_ref = coder.reference_feature(
                    ybuf.index_select(0, at_ref.index_select(0, j).flatten()).view(p, -1)
                )
            else:
                bias = first_bias.expand(p)
        logits, means, scale_idx = coder.stages(
            phi_loc, phi_ref, psi.index_select(0, idx)
        )  # each 3, P, M
        if bias is not None:
            logits[1] += bias.view(p, 1)
        sym = code_group(
            idx,
            tables.coding_tables(
                logits.reshape(3, -1),
                means.reshape(3, -1),
                scale_idx.reshape(3, -1),
                coder.only_last,
            ),
        ).to(device)
        ybuf.index_copy_(0, at_self[now], sym)
        largest = max(largest, int(sym.abs().max()))
        if coder.reference:
            mass = tables.bin_prob(sym, means[0], scale_idx[0]).sum(1)
            log_conf[now] = tables.log(mass.double() / (M << CDF_BITS))
        done += p
    grid = ybuf.view(h + PAD, stride, M)[PAD:, PAD : PAD + w]
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

    _run(coder, z_hat, write)
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

    return _run(coder, z_hat, read)
