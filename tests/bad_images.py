"""Awkward and hostile image files, made on the fly (shared by the CLI and prepare tests)."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _photo(h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, w)[None, :, None] * np.ones((h, 1, 3))
    return np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)


def _save(img, fmt, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _bomb_png() -> bytes:
    """A real PNG whose header claims 30000×30000 pixels."""
    data = bytearray(_save(Image.fromarray(_photo(8, 8)), "PNG"))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", 30000, 30000)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17]))
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


def _exif_rotated() -> bytes:
    img = Image.fromarray(_photo(40, 64))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    return _save(img, "JPEG", exif=exif.tobytes())


def make_bad_images(folder: Path) -> dict:
    """name → (expected outcome, path). Outcomes: 'ok', 'converted', 'unreadable', 'bomb',
    'tiny'."""
    folder.mkdir(parents=True, exist_ok=True)
    jpeg = _save(Image.fromarray(_photo()), "JPEG", quality=90)
    png = _save(Image.fromarray(_photo(seed=1)), "PNG")
    gray16 = (np.linspace(0, 65535, 48 * 64).reshape(48, 64)).astype(np.uint16)
    files = {
        "good1.png": ("ok", png),
        "good2.jpg": ("ok", _save(Image.fromarray(_photo(seed=2)), "JPEG")),
        "good3.png": ("ok", _save(Image.fromarray(_photo(seed=3)), "PNG")),
        "truncated.jpg": ("unreadable", jpeg[: len(jpeg) // 2]),
        "truncated.png": ("unreadable", png[: len(png) // 2]),
        "empty.png": ("unreadable", b""),
        "text.png": ("unreadable", b"this is not an image\n" * 10),
        "bomb.png": ("bomb", _bomb_png()),
        "cmyk.jpg": ("converted", _save(Image.fromarray(_photo(seed=4)).convert("CMYK"), "JPEG")),
        "gray16.png": ("converted", _save(Image.fromarray(gray16), "PNG")),
        "palette.png": ("converted", _save(Image.fromarray(_photo(seed=5)).convert("P"), "PNG")),
        "rgba.png": (
            "converted",
            _save(
                Image.fromarray(np.dstack([_photo(seed=6), np.full((48, 64), 128, np.uint8)])),
                "PNG",
            ),
        ),
        "exif.jpg": ("converted", _exif_rotated()),
        "one.png": ("tiny", _save(Image.fromarray(_photo(1, 1)), "PNG")),
        "line.png": ("tiny", _save(Image.fromarray(_photo(1, 20000)), "PNG")),
    }
    out = {}
    for name, (outcome, data) in files.items():
        (folder / name).write_bytes(data)
        out[name] = (outcome, folder / name)
    return out
