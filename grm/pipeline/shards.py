"""WebDataset shards: writing images into them and reading training crops out of them.

Shards hold whole images as PNG; random crops and flips (and, with ``train.min_scale``,
random shrinks) are cut at read time, several per decoded image. Each rank reads its own
slice of the shard list (rank, rank+world, …) and each loader worker a slice of that, so
no two processes ever see the same image; the stream repeats forever, and the trainer
decides how many steps to take, which keeps every rank in lock-step. The stream's state
at any step is computed, not replayed (``CropStream``), so a resumed run continues in
seconds.
"""

from __future__ import annotations

import io
import json
import shlex
import tarfile
from pathlib import Path

import numpy as np
import torch

from ..errors import GrmError
from ..image_io import png_bytes

INDEX = "index.json"


def decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


class ShardSink:
    """One split's shards, written sample by sample; reproducible bytes (fixed mtime)."""

    def __init__(self, folder: Path, prefix: str, per_shard: int):
        import webdataset as wds

        folder.mkdir(parents=True, exist_ok=True)
        self.prefix, self.folder = prefix, folder
        # Shards roll over by count only, so the samples per shard follow from the keys.
        self.sink = wds.ShardWriter(
            str(folder / f"{prefix}-%06d.tar"),
            maxcount=per_shard,
            maxsize=1 << 62,
            verbose=0,
            mtime=0,
        )
        self.per_shard = per_shard
        self.keys: list[str] = []

    def write(self, key: str, png: bytes) -> None:
        self.sink.write({"__key__": key, "png": png})
        self.keys.append(key)

    def close(self) -> dict[str, int]:
        """Shard name → number of samples."""
        self.sink.close()
        names = sorted(p.name for p in self.folder.glob(f"{self.prefix}-*.tar"))
        n = len(self.keys)
        return {name: min(self.per_shard, n - i * self.per_shard) for i, name in enumerate(names)}


def write_shards(samples, folder: Path, prefix: str, per_shard: int) -> list[str]:
    """Write (key, uint8 image) pairs to folder/prefix-NNNNNN.tar; returns shard names."""
    sink = ShardSink(folder, prefix, per_shard)
    for key, arr in samples:
        sink.write(key, png_bytes(arr, compress_level=1))
    return list(sink.close())


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


def _samples(url: str, skip: int = 0, read: bool = True):
    """(key, png bytes) from one tar shard, in order; the first ``skip`` are passed over undecoded.

    ``read=False`` yields (key, None): counting samples without reading their bytes.
    """
    try:
        with _open(url) as stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
            i = 0
            for member in tar:
                if not (member.isfile() and member.name.endswith(".png")):
                    continue
                if i >= skip:
                    yield member.name[:-4], tar.extractfile(member).read() if read else None
                i += 1
    except FileNotFoundError:
        raise GrmError(f"shard {url} is missing") from None
    except (tarfile.TarError, EOFError) as e:
        raise GrmError(f"shard {url} is truncated or corrupt ({e})") from None
    except OSError as e:
        raise GrmError(f"cannot read shard {url}: {e.strerror or e}") from None


def _open(url: str):
    """WebDataset's gopen, but an unreachable http(s) shard fails in seconds: gopen's own
    curl waits 30 s per connection and retries 30 times."""
    from webdataset.gopen import gopen

    if url.startswith(("http://", "https://")):
        curl = "curl --connect-timeout 10 --max-time 600 --retry 2 --retry-delay 1 -f -s -L"
        url = f"pipe:{curl} {shlex.quote(url)}"
    return gopen(url, "rb")


def shard_sizes(urls: list[str]) -> list[int]:
    """Samples per shard: from the prepared index.json when there is one, else counted once."""
    sizes = {}
    for folder in {str(Path(u).parent) for u in urls if Path(u).is_file()}:
        index = Path(folder) / INDEX
        if index.is_file():
            counts = json.loads(index.read_text()).get("counts") or {}
            sizes.update({str(Path(folder) / name): n for name, n in counts.items()})
    return [sizes[u] if u in sizes else sum(1 for _ in _samples(u, read=False)) for u in urls]


class CropStream(torch.utils.data.IterableDataset):
    """Batches of random crops whose position at any step can be computed directly.

    One loader worker's stream: epoch e visits the worker's shards in an order drawn
    from (seed, rank, worker, e), each shard's images in order, ``crops_per_image``
    crops and flips per image drawn from (seed, rank, worker, e, image). Crops are
    shuffled in windows of ``shuffle_buffer`` by (seed, rank, worker, e, window). So
    the crop at position p is a pure function of p, and starting at step N opens one
    shard, skips to the right image without decoding, and decodes one window: resuming
    costs the same at step 10 and at step 1,000,000.
    """

    def __init__(
        self,
        urls,
        sizes,
        *,
        crop,
        batch_size,
        crops_per_image,
        shuffle_buffer,
        seed,
        rank,
        start_step=0,
        min_scale=1.0,
    ):
        super().__init__()
        if not 0.0 < min_scale <= 1.0:
            raise ValueError(f"train.min_scale must be in (0, 1], not {min_scale}")
        self.urls, self.sizes = urls, sizes
        self.crop, self.batch, self.per_image = crop, batch_size, crops_per_image
        self.min_scale = min_scale
        self.window = max(1, shuffle_buffer // crops_per_image)  # images per shuffle window
        self.seed, self.rank, self.start_step = seed, rank, start_step

    def _crops(self, img, rng):
        crop = self.crop
        if self.min_scale < 1.0:  # no draw at 1, so streams without it stay as they were
            img = shrink(img, float(np.exp(rng.uniform(np.log(self.min_scale), 0.0))))
        h, w = img.shape[:2]
        if h < crop or w < crop:
            img = np.pad(
                img, ((0, max(0, crop - h)), (0, max(0, crop - w)), (0, 0)), mode="reflect"
            )
            h, w = img.shape[:2]
        for _ in range(self.per_image):
            i, j = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
            patch = img[i : i + crop, j : j + crop]
            if rng.random() < 0.5:
                patch = patch[:, ::-1]
            if rng.random() < 0.5:
                patch = patch[::-1]
            yield torch.from_numpy(patch.copy()).permute(2, 0, 1)

    def _images(self, order, sizes, first):
        """(key, image index in epoch, decoded image) from image ``first`` of the epoch on."""
        idx = 0
        for shard in order:
            if idx + sizes[shard] <= first:
                idx += sizes[shard]
                continue
            skip = max(0, first - idx)
            for key, png in _samples(self.urls[shard], skip):
                yield key, idx + skip, decode_png(png)
                skip += 1
            idx += sizes[shard]

    def _stream(self, urls_idx, worker, position):
        """Crops of this worker from crop ``position`` on, forever."""
        sizes = {i: self.sizes[i] for i in urls_idx}
        n_images = sum(sizes.values())
        if n_images == 0:
            raise ValueError("the training shards hold no images")
        epoch, position = divmod(position, n_images * self.per_image)
        while True:
            key = [self.seed, self.rank, worker, epoch]
            order = [urls_idx[i] for i in np.random.default_rng(key).permutation(len(urls_idx))]
            w, offset = divmod(position, self.window * self.per_image)
            images = self._images(order, sizes, w * self.window)
            while w * self.window < n_images:
                batch = []
                for _ in range(min(self.window, n_images - w * self.window)):
                    name, i, img = next(images)
                    batch.extend(
                        (c, name) for c in self._crops(img, np.random.default_rng(key + [1, i]))
                    )
                perm = np.random.default_rng(key + [2, w]).permutation(len(batch))
                for j in perm[offset:]:
                    yield batch[j]
                offset, w = 0, w + 1
            epoch, position = epoch + 1, 0

    def __iter__(self):
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        # DataLoader takes batches from its workers in turn, starting with worker 0; the
        # stream's batch n belongs to logical worker n % K. A loader started at step N
        # therefore lets its worker w play logical worker (N + w) % K.
        worker = (self.start_step + worker) % workers
        mine = list(range(len(self.urls)))[worker::workers]
        done = (self.start_step - worker + workers - 1) // workers  # its batches before step N
        stream = self._stream(mine, worker, done * self.batch)
        while True:
            items = [next(stream) for _ in range(self.batch)]
            yield torch.stack([t for t, _ in items]).float().div_(255.0), [k for _, k in items]


def shrink(img: np.ndarray, scale: float) -> np.ndarray:
    """The photo downscaled by ``scale`` (antialiased): another photo, with more detail per
    pixel, so a few photos show the model more kinds of texture."""
    from PIL import Image

    h, w = img.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size == (w, h):
        return img
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS))


def train_loader(
    urls: list[str],
    *,
    crop: int,
    batch_size: int,
    rank: int = 0,
    world: int = 1,
    workers: int = 0,
    crops_per_image: int = 4,
    shuffle_buffer: int = 256,
    seed: int = 0,
    start_step: int = 0,
    min_scale: float = 1.0,
):
    """Endless iterator of (batch [B,3,crop,crop] in [0,1], source keys) for one rank, from
    ``start_step``."""
    need = world * max(1, workers)
    if len(urls) < need:
        raise ValueError(
            f"{len(urls)} training shards cannot feed {world} rank(s) × {max(1, workers)} "
            f"worker(s): write at least {need} shards (lower prepare.images_per_shard)"
        )
    mine = urls[rank::world]
    ds = CropStream(
        mine,
        shard_sizes(mine),
        crop=crop,
        batch_size=batch_size,
        crops_per_image=crops_per_image,
        shuffle_buffer=shuffle_buffer,
        seed=seed,
        rank=rank,
        start_step=start_step,
        min_scale=min_scale,
    )
    # An own generator: the loader must not draw from torch's global RNG, which belongs
    # to training (noise) and is restored on resume.
    loader = torch.utils.data.DataLoader(
        ds,
        batch_size=None,
        num_workers=workers,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(seed * 1000 + rank),
    )
    return iter(loader)


def read_images(urls: list[str]):
    """Every (key, uint8 image) in the given shards, in order (validation, evaluation)."""
    for url in urls:
        for key, png in _samples(url):
            yield key, decode_png(png)
