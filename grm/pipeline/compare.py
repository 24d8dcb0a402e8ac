"""Side-by-side crops: the original and every codec near one common bpp, per image.

People judge codecs by looking; blocking, blur, colour shifts and ringing show at a
glance where a table of PSNRs hides them. The crop shown is the window where the
codecs' errors differ most, so the figure shows what separates them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Panel:
    title: str  # codec label
    bpp: float
    image: np.ndarray  # decoded, H×W×3 uint8


def nearest(points: list[dict], target: float) -> dict:
    """The point (a dict with 'bpp') nearest ``target`` bpp, on a log scale."""
    return min(points, key=lambda p: abs(np.log(max(p["bpp"], 1e-9) / target)))


def window_means(err: np.ndarray, size: int, stride: int) -> np.ndarray:
    """Mean of ``err`` (H×W) over every size×size window on a stride grid (summed-area table)."""
    s = np.pad(err, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    ys = np.arange(0, err.shape[0] - size + 1, stride)
    xs = np.arange(0, err.shape[1] - size + 1, stride)
    y0, x0 = np.meshgrid(ys, xs, indexing="ij")
    total = s[y0 + size, x0 + size] - s[y0, x0 + size] - s[y0 + size, x0] + s[y0, x0]
    return total / (size * size)


def most_different_crop(
    original: np.ndarray, decoded: list[np.ndarray], size: int, stride: int = 8
) -> tuple[int, int, int]:
    """(top, left, side) of the square window where the codecs' mean squared errors spread most."""
    h, w = original.shape[:2]
    size = min(size, h, w)
    ref = original.astype(np.float64)
    means = np.stack(
        [window_means(((d.astype(np.float64) - ref) ** 2).mean(2), size, stride) for d in decoded]
    )
    spread = means.max(0) - means.min(0)
    i, j = np.unravel_index(int(np.argmax(spread)), spread.shape)
    return int(i * stride), int(j * stride), size


def render(
    original: np.ndarray, panels: list[Panel], path, title: str, crop_size: int = 128
) -> list[str]:
    """One figure: the original's crop, then each codec's crop with its bpp underneath.
    Returns the titles of the panels drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top, left, side = most_different_crop(original, [p.image for p in panels], crop_size)
    tiles = [("original", None, original)] + [(p.title, p.bpp, p.image) for p in panels]
    cols = min(4, len(tiles))
    rows = -(-len(tiles) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 3.4 * rows), dpi=110, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, bpp, img) in zip(axes.flat, tiles):
        ax.imshow(img[top : top + side, left : left + side], interpolation="nearest")
        # The bpp sits in the title: text below a panel collides with the next row's titles.
        ax.set_title(
            f"{name}\n{'lossless source' if bpp is None else f'{bpp:.3f} bpp'}", fontsize=8
        )
    fig.suptitle(
        f"{title}: the {side}×{side} window at x={left}, y={top}, where the codecs differ most",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return [t[0] for t in tiles]
