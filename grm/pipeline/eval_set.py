"""The evaluation set and per-image averages, shared by learned and classic codecs.

Kept apart from the learned-codec evaluation so the classic stage does not depend
on the model code (a model edit must not rerun JPEG).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..image_io import read_image


def eval_images(folder: Path) -> list[tuple[str, np.ndarray]]:
    files = sorted(folder.glob("*.png"))
    if not files:
        raise FileNotFoundError(f"no evaluation images (*.png) in {folder}")
    return [(p.stem, read_image(p)[0]) for p in files]


KINDS_FILE = "kinds.json"
# How grm used its global reference on each photo (grm.model.GRM.entropy_stats).
REFERENCE_STATS = ("ref_used", "ref_similarity", "ref_confidence", "weight_stage2")


def write_kinds(folder: Path, kinds: dict[str, str]) -> None:
    """Each evaluation photo's kind, beside the photos (clean, textured, repeated, …)."""
    (folder / KINDS_FILE).write_text(json.dumps(dict(sorted(kinds.items())), indent=1))


def eval_kinds(folder: Path) -> dict[str, str]:
    """photo → kind, for the report's per-kind comparisons ("all" where none was written)."""
    path = folder / KINDS_FILE
    kinds = json.loads(path.read_text()) if path.is_file() else {}
    return {p.stem: kinds.get(p.stem, "all") for p in sorted(folder.glob("*.png"))}


def mean_row(rows: list[dict]) -> dict:
    keys = [
        k for k, v in rows[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    out = {}
    for k in keys:
        vals = np.array([r[k] for r in rows], dtype=float)
        finite = vals[np.isfinite(vals)]
        out[k] = float(finite.mean()) if finite.size else float("nan")
    if all("bit_exact" in r for r in rows):  # learned codecs: the decoded latents were compared
        out["bit_exact"] = all(r["bit_exact"] for r in rows)
    out["images"] = len(rows)
    return out
