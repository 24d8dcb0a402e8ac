"""Serial arithmetic coding of ŷ with the GRM entropy model.

Encoder and decoder run the very same ``_run`` loop over groups of positions (one
position in raster order, one wavefront in wavefront order): each group reads only
positions already coded, evaluates the networks as matrix products in the same order
and dtype, builds the per-symbol probability tables and then either writes the known
symbols or reads them. Sharing the loop is what keeps the two bit-exact.

The symbols go through constriction's range coder, which takes the tables as numpy
arrays (no per-symbol Python objects) and quantises them deterministically.
"""

from __future__ import annotations

import constriction
import numpy as np
import torch
import torch.nn.functional as F

from .errors import DecodeError
from .mixture import CodingTables, coding_tables, gaussian_bin_prob, split_stage
from .reference import DESCRIPTOR_TAPS, SIM_MIN, decode_groups

PAD = 2  # the 5×5 context reaches two positions out
MAX_SYMBOL = 1 << 15  # ŷ is clamped to ±MAX_SYMBOL so every value has a code


def _linear_parts(net):
    convs = [m for m in net if isinstance(m, torch.nn.Conv2d)]
    return [(c.weight.flatten(1), c.bias) for c in convs]


class _Tables:
    """The model's weights rearranged as matrices for evaluation on a few positions."""

    def __init__(self, model, psi: torch.Tensor):
        cfg = model.config
        M, H = cfg.M, cfg.width
        self.M, self.H = M, H
        self.ctx_w, self.ctx_taps = model.context.causal_taps()
        self.ctx_b = model.context.bias
        self.ref_w, self.ref_taps = model.ref_conv.causal_taps()
        self.ref_b = model.ref_conv.bias
        (w1, b1), l12, l13 = _linear_parts(model.stage1)
        (w2, b2), l22, l23 = _linear_parts(model.stage2)
        (w3, b3), l32, l33 = _linear_parts(model.stage3)
        # First layers split by input: local (all stages), reference (2, 3), hyper (3).
        self.loc_w = torch.cat([w1, w2[:, :2 * M], w3[:, :2 * M]])
        self.loc_b = torch.cat([b1, b2, b3])
        self.ref_proj_w = torch.cat([w2[:, 2 * M:], w3[:, 2 * M:4 * M]])
        # The hyper feature is known up front: project it for every position at once.
        psi_proj = F.conv2d(psi, w3[:, 4 * M:].reshape(H, 2 * M, 1, 1))
        self.psi_proj = psi_proj[0].flatten(1).t().contiguous()            # HW, H
        self.mid_w = torch.stack([l12[0], l22[0], l32[0]])
        self.mid_b = torch.stack([l12[1], l22[1], l32[1]]).unsqueeze(-1)
        self.out_w = torch.stack([l13[0], l23[0], l33[0]])
        self.out_b = torch.stack([l13[1], l23[1], l33[1]]).unsqueeze(-1)
        self.logit_mask = model.stage_mask()
        self.reference = cfg.reference == "on"


def _flat_taps(r: torch.Tensor, c: torch.Tensor, taps, stride: int) -> torch.Tensor:
    """Row indices into the flattened symbol buffer of each position's taps: (n, T)."""
    dy = torch.tensor([d for d, _ in taps])
    dx = torch.tensor([d for _, d in taps])
    return (r.unsqueeze(1) + dy) * stride + c.unsqueeze(1) + dx


def _run(model, psi: torch.Tensor, code_group) -> torch.Tensor:
    """Visit the latent positions group by group in decoding order.

    A group is one position (raster) or one wavefront; ``code_group(index, tables)``
    writes or reads the symbols of a group and returns them as a (P, M) tensor. Every
    quantity a group needs comes from earlier groups only.
    """
    t = _Tables(model, psi)
    M, H = t.M, t.H
    _, _, h, w = psi.shape
    n = h * w
    groups = decode_groups(h, w, model.config.decode_order)
    # Everything per position is laid out in decoding order, so a group is a slice.
    order = torch.cat(groups)
    r, c = order // w + PAD, order % w + PAD
    stride = w + 2 * PAD
    ybuf = torch.zeros((h + PAD) * stride, M)   # ŷ, channels-last, zero margin of PAD
    at_self = r * stride + c
    at_ctx = _flat_taps(r, c, t.ctx_taps, stride)
    at_dsc = _flat_taps(r, c, DESCRIPTOR_TAPS, stride)
    at_ref = _flat_taps(r, c, t.ref_taps, stride)
    psi_proj = t.psi_proj[order]
    # Per decoded position: descriptor, reference contribution to stages 2 and 3,
    # confidence, and the symbols themselves.
    desc = torch.zeros(n, 4 * M)
    ref_feat = torch.zeros(n, 2 * H)
    conf = torch.zeros(n)
    coded = torch.empty(n, M)
    no_ref = torch.zeros(1, 2 * H)
    first_bias = torch.log(torch.tensor(SIM_MIN)) * 2
    done = 0
    for idx in groups:
        p = idx.numel()
        now = slice(done, done + p)
        patch = ybuf.index_select(0, at_ctx[now].flatten()).view(p, -1)
        phi_loc = torch.addmm(t.ctx_b, patch, t.ctx_w.t())
        first = torch.addmm(t.loc_b, phi_loc, t.loc_w.t()).view(p, 3, H)
        bias = None
        rf = no_ref.expand(p, -1)
        if t.reference:
            d = F.normalize(ybuf.index_select(0, at_dsc[now].flatten()).view(p, -1), dim=1)
            desc[now] = d
            if done > 0:
                sims = d @ desc[:done].t()                                   # P, done
                sim, j = sims.max(dim=1)
                bias = torch.log(sim.clamp(SIM_MIN, 1.0)) + torch.log(conf[j])
                rf = ref_feat[j]
            else:
                bias = first_bias.expand(p)
        first[:, 1:] += rf.view(p, 2, H)
        first[:, 2] += psi_proj[now]
        hid = F.leaky_relu(first).permute(1, 2, 0)                            # 3, H, P
        hid = F.leaky_relu(torch.baddbmm(t.mid_b, t.mid_w, hid))
        params = torch.baddbmm(t.out_b, t.out_w, hid).transpose(1, 2)        # 3, P, 3M
        logits, means, scales = split_stage(params, M, -1)                    # each 3, P, M
        if bias is not None:
            logits = torch.cat([logits[:1], logits[1:2] + bias.view(1, p, 1), logits[2:]])
        if t.logit_mask is not None:
            logits = logits + t.logit_mask.view(3, 1, 1)
        tables = coding_tables(logits.reshape(3, -1), means.reshape(3, -1), scales.reshape(3, -1))
        sym = code_group(idx, tables)                                          # P, M
        ybuf.index_copy_(0, at_self[now], sym)
        coded[now] = sym
        if t.reference:
            conf[now] = gaussian_bin_prob(sym, means[0], scales[0]).mean(1).clamp(SIM_MIN, 1.0)
            f = torch.addmm(t.ref_b, ybuf.index_select(0, at_ref[now].flatten()).view(p, -1), t.ref_w.t())
            ref_feat[now] = f @ t.ref_proj_w.t()
        done += p
    out = torch.empty(n, M)
    out[order] = coded
    return out.t().reshape(1, M, h, w)


def padded_stream(data: bytes, n_symbols: int) -> bytes:
    """The stream followed by enough zero bytes that compressai's C++ rANS decoder
    (used for z), which does not bounds-check, stays inside the buffer however damaged
    the input: it reads at most one 32-bit word per symbol (and per bypass chunk) past
    the end. On a valid stream the padding is never read."""
    return bytes(data) + bytes(8 * n_symbols + 64)


def _check_single(psi: torch.Tensor):
    if psi.shape[0] != 1:
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


@torch.no_grad()
def encode_latents(model, y_sym: torch.Tensor, psi: torch.Tensor) -> bytes:
    """ŷ (clamped to ±MAX_SYMBOL by the caller) → bytes."""
    _check_single(psi)
    enc = constriction.stream.queue.RangeEncoder()
    window, wide = _models()
    flat = (y_sym[0].flatten(1).t() + 0.0).contiguous()   # HW, M; +0.0 turns -0 into 0

    def write(idx, t: CodingTables):
        sym = flat[idx]
        values = sym.flatten().numpy().astype(np.int32)
        symbols, escaped = _window_symbols(values, t)
        enc.encode(symbols, window, t.probs)
        if escaped.any():
            enc.encode(values[escaped], wide, t.centre[escaped], t.spread[escaped])
        return sym

    _run(model, psi, write)
    return enc.get_compressed().astype("<u4").tobytes()


@torch.no_grad()
def decode_latents(model, data: bytes, psi: torch.Tensor) -> torch.Tensor:
    _check_single(psi)
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

    return _run(model, psi, read)
