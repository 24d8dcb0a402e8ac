"""Classic codecs as small adapters: real encode to bytes, real decode back.

Adding a codec is one entry in CODECS: a name, an encode(rgb, quality) → bytes and
the quality ladder direction. Decoding always goes through Pillow's reader.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np


def _pillow_encode(fmt: str, **fixed) -> Callable[[np.ndarray, int], bytes]:
    def encode(rgb: np.ndarray, quality: int) -> bytes:
        from PIL import Image
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format=fmt, quality=quality, **fixed)
        return buf.getvalue()
    return encode


def _jpeg2000(rgb: np.ndarray, quality: int) -> bytes:
    # Pillow's OpenJPEG takes a compression ratio; map quality 1..100 to ratio 200..2.
    from PIL import Image
    buf = io.BytesIO()
    ratio = max(2.0, 200.0 / max(1, quality))
    Image.fromarray(rgb).save(buf, format="JPEG2000", quality_mode="rates", quality_layers=[ratio],
                              irreversible=True)
    return buf.getvalue()


def _heic(rgb: np.ndarray, quality: int) -> bytes:
    import pillow_heif
    from PIL import Image
    pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    # 4:4:4 intra HEVC (x265): the coding core of BPG.
    Image.fromarray(rgb).save(buf, format="HEIF", quality=quality, chroma=444)
    return buf.getvalue()


def _jxl(rgb: np.ndarray, quality: int) -> bytes:
    import pillow_jxl  # noqa: F401  (registers the plugin)
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JXL", quality=quality, effort=7)
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    import pillow_heif
    import pillow_jxl  # noqa: F401
    from PIL import Image
    pillow_heif.register_heif_opener()
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB")).copy()


@dataclass(frozen=True)
class Codec:
    name: str
    label: str
    encode: Callable[[np.ndarray, int], bytes]


CODECS = {c.name: c for c in [
    Codec("jpeg", "JPEG (4:2:0)", _pillow_encode("JPEG", optimize=True)),
    Codec("webp", "WebP", _pillow_encode("WEBP", method=6)),
    Codec("jpeg2000", "JPEG 2000", _jpeg2000),
    Codec("avif", "AVIF", _pillow_encode("AVIF", speed=6, subsampling="4:4:4")),
    Codec("hevc", "HEVC intra 4:4:4 (HEIC, BPG core)", _heic),
    Codec("jpegxl", "JPEG XL", _jxl),
]}


def get_codec(name: str) -> Codec:
    if name not in CODECS:
        raise ValueError(f"unknown classic codec {name!r}; available: {sorted(CODECS)}")
    return CODECS[name]
