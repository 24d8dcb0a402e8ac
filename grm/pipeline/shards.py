"""WebDataset shards: writing images into them and reading training crops out of them.

Shards hold whole images as PNG; random crops and flips are cut at read time, several
per decoded image. Each rank reads its own slice of the shard list (rank, rank+world,
…) and each loader worker a slice of that, so no two processes ever see the same
image; the stream repeats forever, and the trainer decides how many steps to take,
which keeps every rank in lock-step.
"""

from __future__ import annotations

import io
import json
import hashlib
from pathlib import Path

import numpy as np
import torch

INDEX = "index.json"


def png_bytes(arr: np.ndarray) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    from PIL import Image
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def write_shards(samples, folder: Path, prefix: str, per_shard: int) -> list[str]:
    """Write (key, uint8 image) pairs to folder/prefix-NNNNNN.tar; returns shard names."""
    import webdataset as wds
    folder.mkdir(parents=True, exist_ok=True)
    pattern = str(folder / f"{prefix}-%06d.tar")
    with wds.ShardWriter(pattern, maxcount=per_shard, verbose=0) as sink:
        for key, arr in samples:
            sink.write({"__key__": key, "png": png_bytes(arr)})
    return sorted(p.name for p in folder.glob(f"{prefix}-*.tar"))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve_shards(source: str, split: str) -> list[str]:
    """Shard URLs for a split: a local folder with index.json, or a brace URL pattern.

    Remote shards are anything WebDataset opens: http(s)://…, pipe:aws s3 cp … -, etc.
    """
    import braceexpand
    path = Path(source)
    if path.is_dir():
        index = json.loads((path / INDEX).read_text())
        return [str(path / name) for name in index["splits"][split]]
    if "{split}" in source:
        source = source.replace("{split}", split)
    return list(braceexpand.braceexpand(source))


class _RandomCrops:
    """Per decoded image, ``per_image`` random crops with random flips.

    The generator is kept by each loader worker across epochs of the repeated
    pipeline, so every epoch cuts new crops while staying reproducible.
    """

    def __init__(self, crop: int, per_image: int, seed: int):
        self.crop, self.per_image, self.seed, self.rng = crop, per_image, seed, None

    def __call__(self, src):
        from torch.utils.data import get_worker_info
        if self.rng is None:
            info = get_worker_info()
            self.rng = np.random.default_rng([self.seed, info.id if info else 0])
        crop, rng = self.crop, self.rng
        for sample in src:
            img = decode_png(sample["png"])
            h, w = img.shape[:2]
            if h < crop or w < crop:
                img = np.pad(img, ((0, max(0, crop - h)), (0, max(0, crop - w)), (0, 0)), mode="reflect")
                h, w = img.shape[:2]
            for _ in range(self.per_image):
                i, j = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
                patch = img[i:i + crop, j:j + crop]
                if rng.random() < 0.5:
                    patch = patch[:, ::-1]
                if rng.random() < 0.5:
                    patch = patch[::-1]
                yield torch.from_numpy(patch.copy()).permute(2, 0, 1), sample["__key__"]


def _collate(items):
    return torch.stack([t for t, _ in items]).float().div_(255.0), [k for _, k in items]


def train_loader(urls: list[str], *, crop: int, batch_size: int, rank: int = 0, world: int = 1,
                 workers: int = 0, crops_per_image: int = 4, shuffle_buffer: int = 64, seed: int = 0):
    """Endless iterator of (batch [B,3,crop,crop] in [0,1], source keys) for one rank."""
    import webdataset as wds
    need = world * max(1, workers)
    if len(urls) < need:
        raise ValueError(f"{len(urls)} training shards cannot feed {world} rank(s) × {max(1, workers)} "
                         f"worker(s): write at least {need} shards (lower prepare.images_per_shard)")
    mine = urls[rank::world]
    ds = (wds.WebDataset(mine, shardshuffle=len(mine), nodesplitter=None,
                         workersplitter=wds.split_by_worker, seed=seed + rank, empty_check=False)
          .compose(_RandomCrops(crop, crops_per_image, seed * 1000 + rank))
          .shuffle(shuffle_buffer, seed=seed + rank)
          .batched(batch_size, collation_fn=_collate, partial=False)
          .repeat())
    # An own generator: the loader must not draw from torch's global RNG, which belongs
    # to training (noise) and is restored on resume.
    loader = wds.WebLoader(ds, batch_size=None, num_workers=workers, persistent_workers=workers > 0,
                           generator=torch.Generator().manual_seed(seed * 1000 + rank))
    return iter(loader)


def read_images(urls: list[str]):
    """Every (key, uint8 image) in the given shards, in order (validation, evaluation)."""
    import webdataset as wds
    ds = wds.WebDataset(urls, shardshuffle=False, nodesplitter=None, workersplitter=None, empty_check=False)
    for sample in ds:
        yield sample["__key__"], decode_png(sample["png"])
