"""Reading and writing images: anything Pillow opens becomes RGB 8-bit, with a note."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from .errors import ImageError, os_failures

# File suffixes taken for images when a folder is given (CLI batches, the prepare stage).
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"}

MAX_PIXELS = 1 << 28  # larger files are refused as possible decompression bombs


def _to_rgb8(img) -> tuple[np.ndarray, list[str]]:
    notes = []
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I") else max(1.0, float(arr.max()))
        arr = np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8)
        notes.append(f"converted {mode} to 8-bit")
        return np.repeat(arr[..., None], 3, axis=2), notes + ["converted grayscale to RGB"]
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        notes.append(f"dropped the alpha channel of a {mode} image")
    elif mode in ("L", "1"):
        notes.append("converted grayscale to RGB")
    elif mode != "RGB":
        notes.append(f"converted {mode} to RGB")
    rgb = img.convert("RGB") if mode != "RGB" else img
    return np.asarray(rgb, dtype=np.uint8).copy(), notes


def read_image(src: str | Path | bytes, label: str = "<stdin>") -> tuple[np.ndarray, list[str]]:
    """(H, W, 3) uint8 and notes on what was converted; ImageError for anything unusable.

    ``src`` is a path, or the bytes of an image file (stdin), named ``label`` in messages.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(src, (bytes, bytearray)):
        if not src:
            raise ImageError(f"{label}: empty file")
        path, source = label, io.BytesIO(src)
    else:
        path = source = Path(src)
        if not path.is_file():
            raise ImageError(f"image not found: {path}")
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            old = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            try:
                with Image.open(source) as img:
                    img.load()
                    notes = []
                    if img.getexif().get(0x0112, 1) != 1:
                        notes.append("applied EXIF orientation")
                    img = ImageOps.exif_transpose(img)
                    arr, more = _to_rgb8(img)
            finally:
                Image.MAX_IMAGE_PIXELS = old
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(
            f"{path}: refused, too many pixels (possible decompression bomb): {e}"
        ) from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: unreadable or truncated image ({e})") from None
    return arr, notes + more


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    return unit_float(uint8_view(arr))


def uint8_view(arr: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 → (1, 3, H, W) uint8 without a copy: the codec converts it to float
    a tile at a time, so a large photo is never held as float32 (4 bytes per sample)."""
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0)


def unit_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 samples → float in [0, 1]; float input is returned as it is."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return x[0].clamp(0, 1).mul_(255.0).round_().byte().permute(1, 2, 0).cpu().numpy()


def umask_mode(folder: bool = False) -> int:
    """The mode a plain open() (or mkdir) would give: mkstemp and safetensors give 0600."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if folder else 0o666) & ~mask


def share(path: str | Path) -> None:
    """Give a file, or a folder and all under it, the modes the umask allows, so colleagues
    on a shared machine read checkpoints as they read everything else."""
    path = Path(path)
    files, folders = umask_mode(), umask_mode(folder=True)
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.chmod(p, folders if p.is_dir() else files)


def empty_folder(folder: str | Path, keep: Path | None = None) -> None:
    """``folder`` made empty (all but ``keep``) but kept: it may be a mount point, which
    cannot be removed or renamed (a scratch disk for shards or a run)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for p in folder.iterdir():
        if p == keep:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write via a temp file in the same folder and rename: readers never see half a file."""
    path = Path(path)
    with os_failures("writing", path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
        try:
            os.fchmod(fd, umask_mode())
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def png_bytes(arr: np.ndarray, compress_level: int = 6) -> bytes:
    """PNG bytes of a uint8 array; shards take level 1 (fast to write, decoded once per epoch)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def write_png(path: str | Path, arr: np.ndarray) -> None:
    write_atomic(path, png_bytes(arr))
