"""Images → WebDataset shards (train, val) and an evaluation folder, with counts.

Images stream through: worker processes read, check and convert them, the main
process writes each result in source order, so peak memory is a few images per
worker whatever the size of the collection, and the shards are byte-identical
whatever the number of workers. Which split an image joins is a function of its key
alone (a hash), so adding or removing photos moves only those photos. Every input is
either used (possibly converted) or skipped for a stated reason; the counts are
returned so the stage can write them as a DVC metric.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..checksum import sha256_file
from ..errors import ImageError
from ..image_io import IMAGE_SUFFIXES, empty_folder, png_bytes, read_image
from ..settings import from_known_keys
from .eval_set import write_kinds
from .sample_images import bundled_photos
from .shards import INDEX, ShardSink

log = logging.getLogger("grm.prepare")


@dataclass
class PrepareSettings:
    source: str | list = "bundled"  # 'bundled', a folder (searched recursively), or a list
    eval_source: str = ""  # a folder of evaluation photos, each subfolder a kind (data/eval_photos)
    eval_names: list = field(default_factory=list)  # file stems for the evaluation set
    eval_fraction: float = 0.0  # used when eval_names is empty: this share of images, by key hash
    val_fraction: float = 0.01  # share of the other images used for validation, by key hash
    min_side: int = 32
    max_side: int = 0  # training/validation images larger than this are downscaled (0: never)
    eval_max_side: int = 512  # centre-crop evaluation images to at most this side
    images_per_shard: int = 2
    workers: int = 0  # reader processes; 0 = one per CPU core
    grayscale: str = "keep"  # keep (as R=G=B) | skip: training/validation photos without colour

    @classmethod
    def from_dict(cls, d: dict) -> "PrepareSettings":
        s = from_known_keys(cls, d, "prepare settings")
        if s.grayscale not in ("keep", "skip"):
            raise ValueError(f"prepare.grayscale must be keep or skip, not {s.grayscale!r}")
        return s


def list_sources(source: str | list, root: Path) -> list[tuple[str, Path]]:
    """(key, path) of every image of one source or of several (keys must not repeat)."""
    if isinstance(source, list):
        found = [item for one in source for item in list_sources(one, root)]
        repeated = sorted(k for k, n in Counter(k for k, _ in found).items() if n > 1)
        if repeated:
            raise ValueError(f"prepare.source: two images are named {', '.join(repeated[:5])}")
        return sorted(found)
    if source == "bundled":
        return sorted(bundled_photos().items())
    folder = (root / source) if not Path(source).is_absolute() else Path(source)
    if not folder.is_dir():
        raise FileNotFoundError(f"prepare.source: folder not found: {folder}")
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    names = Counter(p.stem for p in files)
    return [
        (p.stem if names[p.stem] == 1 else str(p.relative_to(folder)).replace("/", "_"), p)
        for p in files
    ]


def key_position(key: str) -> float:
    """A key's fixed place in [0, 1): the split it joins depends on nothing else."""
    digest = hashlib.sha256(b"grm-split\0" + key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_of(key: str, s: PrepareSettings) -> str:
    """eval (named, or the first eval_fraction of [0, 1)), then val_fraction of the rest, then
    train. With an eval_source, no training source is ever evaluated."""
    if key in s.eval_names and not s.eval_source:
        return "eval"
    eval_share = 0.0 if s.eval_names or s.eval_source else s.eval_fraction
    u = key_position(key)
    if u < eval_share:
        return "eval"
    v = (u - eval_share) / (1 - eval_share) if eval_share < 1 else u
    return "val" if v < s.val_fraction else "train"


def eval_sources(s: PrepareSettings, root: Path) -> dict[str, tuple[Path, str]]:
    """key → (path, kind) of the evaluation photos of ``eval_source`` (those of eval_names,
    when named); a photo's kind is its subfolder ("all" directly in the folder)."""
    if not s.eval_source:
        return {}
    folder = root / s.eval_source
    if not folder.is_dir():
        raise FileNotFoundError(f"prepare.eval_source: folder not found: {folder}")
    found = {
        key: (path, path.relative_to(folder).parts[0] if path.parent != folder else "all")
        for key, path in list_sources(s.eval_source, root)
    }
    if s.eval_names:
        missing = set(s.eval_names) - set(found)
        if missing:
            raise ValueError(f"prepare.eval_names not found in {folder}: {sorted(missing)}")
        found = {k: v for k, v in found.items() if k in s.eval_names}
    if not found:
        raise ValueError(f"prepare.eval_source: no images in {folder}")
    return found


def centre_crop(arr: np.ndarray, side: int) -> np.ndarray:
    h, w = arr.shape[:2]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return arr[top : top + side, left : left + side]


def downscale(arr: np.ndarray, max_side: int) -> np.ndarray:
    from PIL import Image

    h, w = arr.shape[:2]
    if max_side <= 0 or max(h, w) <= max_side:
        return arr
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(arr).resize(size, Image.Resampling.LANCZOS))


def _note_kind(note: str) -> str:
    return (
        "grayscale"
        if "grayscale" in note
        else "alpha"
        if "alpha" in note
        else "16bit"
        if "8-bit" in note
        else "exif"
        if "EXIF" in note
        else "other_mode"
    )


def _load(job: tuple[str, str, str, PrepareSettings]) -> dict:
    """One image, in a worker: read, check, convert, encode. Small result, no shared state."""
    key, path, split, s = job
    try:
        arr, notes = read_image(path)
    except ImageError as e:
        return {"key": key, "skip": "unreadable", "why": str(e)}
    if min(arr.shape[:2]) < s.min_side:
        return {
            "key": key,
            "skip": "too_small",
            "why": f"{path}: {arr.shape[1]}x{arr.shape[0]} is smaller than min_side={s.min_side}",
        }
    kinds = [_note_kind(n) for n in notes]
    if split != "eval" and s.grayscale == "skip" and "grayscale" in kinds:
        # Grey photos teach a short run R = G = B: its decoded colours drift toward grey.
        return {
            "key": key,
            "skip": "grayscale",
            "why": f"{path}: grayscale (prepare.grayscale: skip)",
        }
    out = centre_crop(arr, s.eval_max_side) if split == "eval" else downscale(arr, s.max_side)
    return {"key": key, "split": split, "png": png_bytes(out, compress_level=1), "notes": kinds}


def _ordered(fn, jobs: list, workers: int):
    """fn over jobs in order, with at most 2 × workers results in flight (bounded memory)."""
    if workers <= 1:
        yield from map(fn, jobs)
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(workers) as pool:
        pending: deque = deque()
        for job in jobs:
            pending.append(pool.apply_async(fn, (job,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def prepare(
    s: PrepareSettings, root: Path, shards_dir: Path, eval_dir: Path, progress: bool = True
) -> dict:
    """Read, convert or skip every source image; write shards and the evaluation set."""
    sources = list_sources(s.source, root)
    evaluated = eval_sources(s, root)
    both = sorted(set(evaluated) & {k for k, _ in sources})
    if both:
        raise ValueError(f"prepare: evaluation photos are also training photos: {both[:5]}")
    missing = set(s.eval_names) - {k for k, _ in sources} - set(evaluated)
    if missing:
        raise ValueError(f"prepare.eval_names not found among the source images: {sorted(missing)}")
    jobs = [(key, str(path), split_of(key, s), s) for key, path in sources]
    jobs += [(key, str(path), "eval", s) for key, (path, _) in sorted(evaluated.items())]
    for d in (shards_dir, eval_dir):
        empty_folder(d)
    writers = {
        split: ShardSink(shards_dir, split, s.images_per_shard) for split in ("train", "val")
    }
    eval_keys: list[str] = []
    counts: Counter = Counter()
    workers = s.workers or os.cpu_count() or 1
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc="prepare", unit="img", mininterval=2.0, disable=not progress)
    try:
        for r in _ordered(_load, jobs, min(workers, max(1, len(jobs)))):
            bar.update(1)
            counts["found"] += 1
            if "skip" in r:
                log.warning("skipped %s", r["why"])
                counts[f"skipped_{r['skip']}"] += 1
                continue
            counts.update(f"converted_{kind}" for kind in r["notes"])
            if r["split"] == "eval":
                (eval_dir / f"{r['key']}.png").write_bytes(r["png"])
                eval_keys.append(r["key"])
            else:
                writers[r["split"]].write(r["key"], r["png"])
    finally:
        bar.close()
        sizes = {name: w.close() for name, w in writers.items()}
    splits = {name: list(shards) for name, shards in sizes.items()}
    missing = set(s.eval_names) - set(eval_keys)
    if missing:
        raise ValueError(
            f"prepare.eval_names could not be used (unreadable or too small): {sorted(missing)}"
        )
    images = {"train": writers["train"].keys, "val": writers["val"].keys, "eval": eval_keys}
    kinds = {k: evaluated[k][1] if k in evaluated else "all" for k in eval_keys}
    write_kinds(eval_dir, kinds)
    if not images["train"] or not images["val"]:
        raise ValueError(
            f"need at least one training and one validation image; the split by key hash gave "
            f"{len(images['train'])} and {len(images['val'])} (raise prepare.val_fraction, "
            f"now {s.val_fraction}, or add images)"
        )
    index = {
        "splits": splits,
        "sha256": {n: sha256_file(shards_dir / n) for names in splits.values() for n in names},
        "counts": {n: c for split in sizes.values() for n, c in split.items()},
        "images": images,
    }
    (shards_dir / INDEX).write_text(json.dumps(index, indent=1))
    counts.update(
        {
            "train_images": len(images["train"]),
            "val_images": len(images["val"]),
            "eval_images": len(eval_keys),
            "train_shards": len(splits["train"]),
            "val_shards": len(splits["val"]),
        }
    )
    counts.update(f"eval_{kind}" for kind in kinds.values())
    counts["skipped"] = (
        counts["skipped_unreadable"] + counts["skipped_too_small"] + counts["skipped_grayscale"]
    )
    counts["converted"] = sum(v for k, v in counts.items() if k.startswith("converted_"))
    return dict(sorted(counts.items()))
