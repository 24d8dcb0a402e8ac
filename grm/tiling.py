"""Running the transforms over large images in overlapping tiles, in bounded memory.

g_a and g_s are convolutional with a small receptive field, so a tile computed with a
margin around it gives the same interior as the whole image would (up to float
rounding). Memory then depends on the tile size, not on the image: a 7680×4320
synthesis at paper widths needs ~25 GB of activations at once, a 512-pixel tile
~0.3 GB. The transforms only move reconstruction pixels (the probability tables never
see them), so tiling cannot affect what decodes.
"""

from __future__ import annotations

import torch

# Tiles and margins in latent positions (1 latent = 16 pixels). The margin exceeds the
# receptive field of g_a and g_s (under 2 latents on each side; tests compare with the
# untiled result).
TILE = 32
MARGIN = 4


def _spans(n: int, tile: int, margin: int):
    """(core start, core stop, read start, read stop) along one axis."""
    for start in range(0, n, tile):
        stop = min(n, start + tile)
        yield start, stop, max(0, start - margin), min(n, stop + margin)


def tiled(
    fn,
    x: torch.Tensor,
    in_per_latent: int,
    out_per_latent: int,
    tile: int = TILE,
    margin: int = MARGIN,
    size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """fn over x in tiles: x has ``in_per_latent`` samples per latent position along each
    axis, fn's output ``out_per_latent``; images of at most 1.5 tiles' area run in one
    piece (768×512 at the default tile: margins would add 17% to its synthesis).
    ``size`` keeps only the top-left (height, width) of the output, written in place (no
    full-size copy to crop the padding away)."""
    h, w = x.shape[-2] // in_per_latent, x.shape[-1] // in_per_latent
    o = out_per_latent
    H, W = size or (h * o, w * o)
    if h * w <= tile * tile * 3 // 2:
        return fn(x)[..., :H, :W]
    out = None
    i = in_per_latent
    for r0, r1, a0, a1 in _spans(h, tile, margin):
        for c0, c1, b0, b1 in _spans(w, tile, margin):
            if r0 * o >= H or c0 * o >= W:
                continue
            part = fn(x[..., a0 * i : a1 * i, b0 * i : b1 * i])
            if out is None:
                out = torch.empty(
                    x.shape[0], part.shape[1], H, W, dtype=part.dtype, device=part.device
                )
            rows, cols = min(r1 * o, H) - r0 * o, min(c1 * o, W) - c0 * o
            out[..., r0 * o : r0 * o + rows, c0 * o : c0 * o + cols] = part[
                ..., (r0 - a0) * o : (r0 - a0) * o + rows, (c0 - b0) * o : (c0 - b0) * o + cols
            ]
    return out
