"""Images → WebDataset shards (train, val) and an evaluation folder, with counts.

Every input is either used (possibly converted) or skipped for a stated reason; the
counts are returned so the stage can write them as a DVC metric.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ImageError
from ..image_io import read_image, write_png
from .sample_images import bundled_photos
from .shards import INDEX, sha256_file, write_shards

log = logging.getLogger("grm.prepare")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"}


@dataclass
class PrepareSettings:
    source: str = "bundled"        # 'bundled' or a folder of images (searched recursively)
    eval_names: list = field(default_factory=list)   # file stems for the evaluation set
    eval_count: int = 3            # used when eval_names is empty: the last N by name
    val_count: int = 2
    min_side: int = 32
    eval_max_side: int = 512       # centre-crop evaluation images to at most this side
    images_per_shard: int = 2

    @classmethod
    def from_dict(cls, d: dict) -> "PrepareSettings":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown prepare settings: {sorted(unknown)}")
        return cls(**d)


def list_sources(source: str, root: Path) -> list[tuple[str, Path]]:
    if source == "bundled":
        return sorted(bundled_photos().items())
    folder = (root / source) if not Path(source).is_absolute() else Path(source)
    if not folder.is_dir():
        raise FileNotFoundError(f"prepare.source: folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    names = Counter(p.stem for p in files)
    return [(p.stem if names[p.stem] == 1 else str(p.relative_to(folder)).replace("/", "_"), p) for p in files]


def centre_crop(arr: np.ndarray, side: int) -> np.ndarray:
    h, w = arr.shape[:2]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return arr[top:top + side, left:left + side]


def prepare(s: PrepareSettings, root: Path, shards_dir: Path, eval_dir: Path) -> dict:
    """Read, convert or skip every source image; write shards and the evaluation set."""
    counts: Counter = Counter()
    usable: list[tuple[str, np.ndarray]] = []
    for key, path in list_sources(s.source, root):
        counts["found"] += 1
        try:
            arr, notes = read_image(path)
        except ImageError as e:
            log.warning("skipped %s", e)
            counts["skipped_unreadable"] += 1
            continue
        if min(arr.shape[:2]) < s.min_side:
            log.warning("skipped %s: %dx%d is smaller than min_side=%d", path, arr.shape[1], arr.shape[0], s.min_side)
            counts["skipped_too_small"] += 1
            continue
        for note in notes:
            kind = ("grayscale" if "grayscale" in note else "alpha" if "alpha" in note else
                    "16bit" if "8-bit" in note else "exif" if "EXIF" in note else "other_mode")
            counts[f"converted_{kind}"] += 1
        usable.append((key, arr))
    wanted = list(s.eval_names) or [k for k, _ in usable][-s.eval_count:]
    missing = set(wanted) - {k for k, _ in usable}
    if missing:
        raise ValueError(f"prepare.eval_names not found among usable images: {sorted(missing)}")
    eval_set = [(k, a) for k, a in usable if k in wanted]
    rest = [(k, a) for k, a in usable if k not in wanted]
    val, train = rest[:s.val_count], rest[s.val_count:]
    if not train or not val:
        raise ValueError(f"need at least one training and one validation image; have {len(rest)} "
                         f"after taking {len(eval_set)} for evaluation")
    for d in (shards_dir, eval_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    splits = {"train": write_shards(train, shards_dir, "train", s.images_per_shard),
              "val": write_shards(val, shards_dir, "val", s.images_per_shard)}
    for key, arr in eval_set:
        write_png(eval_dir / f"{key}.png", centre_crop(arr, s.eval_max_side))
    index = {"splits": splits,
             "sha256": {n: sha256_file(shards_dir / n) for names in splits.values() for n in names},
             "images": {"train": [k for k, _ in train], "val": [k for k, _ in val],
                        "eval": [k for k, _ in eval_set]}}
    (shards_dir / INDEX).write_text(json.dumps(index, indent=1))
    counts.update({"train_images": len(train), "val_images": len(val), "eval_images": len(eval_set),
                   "train_shards": len(splits["train"]), "val_shards": len(splits["val"])})
    counts["skipped"] = counts["skipped_unreadable"] + counts["skipped_too_small"]
    counts["converted"] = sum(v for k, v in counts.items() if k.startswith("converted_"))
    return dict(sorted(counts.items()))
