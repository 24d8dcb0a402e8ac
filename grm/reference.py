"""Global reference search: for each latent position, the most similar earlier one.

The descriptor of a position is ŷ at its four causal neighbours (top-left, top,
top-right, left), flattened and L2-normalised; similarity is the cosine. A position j
is a candidate for i only if j comes strictly earlier in the decoding order, in
training exactly as in decoding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SIM_MIN = 1e-8
# (dy, dx) of the descriptor taps, in the order their channels are concatenated.
DESCRIPTOR_TAPS = ((-1, -1), (-1, 0), (-1, 1), (0, -1))


def descriptors(y_hat: torch.Tensor) -> torch.Tensor:
    """(B, M, H, W) → (B, H·W, 4M) unit-norm descriptors (zero where all taps are padding)."""
    b, m, h, w = y_hat.shape
    padded = F.pad(y_hat, (1, 1, 1, 0))
    taps = [padded[:, :, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in DESCRIPTOR_TAPS]
    d = torch.cat(taps, dim=1).flatten(2).transpose(1, 2)
    return F.normalize(d, dim=-1)


def order_keys(h: int, w: int, order: str = "raster", device=None) -> torch.Tensor:
    """Decoding time of each position (flat, raster-indexed); equal keys decode together.

    raster: one position at a time. wavefront: key 3r + c; the 5×5 causal context and
    the 3×3 reference neighbourhood of (r, c) all have smaller keys, so a whole
    wavefront is decoded in one batched step (3H + W steps instead of H·W).
    """
    if order == "raster":
        return torch.arange(h * w, device=device)
    if order == "wavefront":
        r = torch.arange(h, device=device).unsqueeze(1)
        c = torch.arange(w, device=device).unsqueeze(0)
        return (3 * r + c).flatten()
    raise ValueError(f"decode order must be 'raster' or 'wavefront', got {order!r}")


def decode_groups(h: int, w: int, order: str) -> list[torch.Tensor]:
    """Flat positions grouped by key, in decoding order."""
    keys = order_keys(h, w, order)
    sorted_keys, idx = torch.sort(keys, stable=True)
    counts = torch.unique_consecutive(sorted_keys, return_counts=True)[1]
    return list(torch.split(idx, counts.tolist()))


@torch.no_grad()
def _argmax_causal(desc: torch.Tensor, keys: torch.Tensor, chunk: int) -> torch.Tensor:
    """Best earlier position; among equal similarities the first in decoding order.

    Candidates are laid out in decoding order (as the serial coder holds them) so that
    argmax breaks exact ties the way the coder does: integer ŷ makes ties common, and
    a different choice would make the estimated rate differ from the coded one.
    """
    b, n, _ = desc.shape
    order = torch.sort(keys, stable=True).indices
    cand, cand_keys = desc[:, order].transpose(1, 2), keys[order]
    out = torch.empty(b, n, dtype=torch.long, device=desc.device)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        sims = desc[:, start:stop] @ cand  # B, chunk, n
        allowed = cand_keys.unsqueeze(0) < keys[start:stop].unsqueeze(1)  # chunk, n
        sims = sims.masked_fill(~allowed, float("-inf"))
        out[:, start:stop] = order[sims.argmax(-1)]
    return out


def causal_search(desc: torch.Tensor, keys: torch.Tensor, chunk: int = 1024):
    """Reference index, similarity S and a has-reference mask for every position.

    Works on row blocks of at most ``chunk`` × H·W similarities, so memory stays
    linear in the image size. S is differentiable in the descriptors.
    """
    ref = _argmax_causal(desc, keys, chunk)
    has_ref = (keys.unsqueeze(0) > keys.min()).expand_as(ref)
    ref_desc = torch.gather(desc, 1, ref.unsqueeze(-1).expand_as(desc))
    sim = (desc * ref_desc).sum(-1).clamp(SIM_MIN, 1.0)
    sim = torch.where(has_ref, sim, torch.full_like(sim, SIM_MIN))
    return ref, sim, has_ref


def gather_positions(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, C, H, W) at flat positions index (B, N) → (B, C, N)."""
    flat = x.flatten(2)
    return torch.gather(flat, 2, index.unsqueeze(1).expand(-1, flat.shape[1], -1))
