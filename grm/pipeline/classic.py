"""Classic codecs as small adapters: real encode to bytes, real decode back.

Adding a codec is one entry in CODECS: a name, a label and an encode(rgb, quality) →
bytes; decoding goes through Pillow's reader unless the codec brings its own.
"""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass
from functools import partial
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
    Image.fromarray(rgb).save(
        buf, format="JPEG2000", quality_mode="rates", quality_layers=[ratio], irreversible=True
    )
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


def _ffmpeg(args: list[str], data: bytes) -> bytes:
    """Run the static ffmpeg of the imageio-ffmpeg wheel (no system binary), stdin → stdout."""
    import imageio_ffmpeg

    r = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", *args],
        input=data,
        capture_output=True,
        timeout=600,
    )
    if r.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {r.stderr.decode(errors='replace').strip()[-500:]}")
    return r.stdout


VVC_PRESET = "medium"  # VVenC's default: see the README for what slower presets cost and give
VVC_FAST = "fast"  # 4× faster than medium on 2 cores, +1% bytes and −0.1 dB (docs/log.md)

# Full-range BT.709 both ways, written into the stream so any decoder converts back alike.
_VVC_COLOUR = [
    "-color_range",
    "pc",
    "-colorspace",
    "bt709",
    "-color_primaries",
    "bt709",
    "-color_trc",
    "bt709",
]


def _vvc(rgb: np.ndarray, qp: int, preset: str = VVC_PRESET) -> bytes:
    """One intra frame through VVenC (ffmpeg's libvvenc): 4:2:0 10-bit, its only input
    format; odd sides are padded by one row / column (cropped away after decoding).
    Perceptual QP adaptation is off: the ladder is scored by PSNR."""
    h, w = rgb.shape[:2]
    return _ffmpeg(
        [
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{w}x{h}",
            "-i",
            "-",
            "-vf",
            "pad=ceil(iw/2)*2:ceil(ih/2)*2,scale=out_color_matrix=bt709:out_range=pc,"
            "format=yuv420p10le",
            *_VVC_COLOUR,
            "-frames:v",
            "1",
            "-c:v",
            "libvvenc",
            "-preset",
            preset,
            "-qp",
            str(qp),
            "-qpa",
            "0",
            "-f",
            "vvc",
            "-",
        ],
        rgb.tobytes(),
    )


def _vvc_decode(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    """ffmpeg's native VVC decoder, back to 8-bit RGB, cropped to the original size."""
    h, w = shape
    raw = _ffmpeg(
        [
            "-f",
            "vvc",
            "-i",
            "-",
            "-vf",
            "scale=in_color_matrix=bt709:in_range=pc",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        data,
    )
    ph, pw = h + h % 2, w + w % 2
    if len(raw) != ph * pw * 3:
        raise RuntimeError(f"VVC decoder returned {len(raw)} bytes for a {pw}x{ph} frame")
    return np.frombuffer(raw, np.uint8).reshape(ph, pw, 3)[:h, :w].copy()


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
    decoder: Callable[[bytes, tuple[int, int]], np.ndarray] | None = None  # None: Pillow

    def decode(self, data: bytes, shape: tuple[int, int]) -> np.ndarray:
        return self.decoder(data, shape) if self.decoder else decode(data)


CODECS = {
    c.name: c
    for c in [
        Codec("jpeg", "JPEG (4:2:0)", _pillow_encode("JPEG", optimize=True)),
        Codec("webp", "WebP", _pillow_encode("WEBP", method=6)),
        Codec("jpeg2000", "JPEG 2000", _jpeg2000),
        Codec("avif", "AVIF", _pillow_encode("AVIF", speed=6, subsampling="4:4:4")),
        Codec("hevc", "HEVC intra 4:4:4 (HEIC, BPG core)", _heic),
        Codec("jpegxl", "JPEG XL", _jxl),
        Codec("vvc", "VVC intra (VVenC, 4:2:0 10-bit)", _vvc, _vvc_decode),
        Codec(
            "vvc-fast",
            "VVC intra (VVenC fast, 4:2:0 10-bit)",
            partial(_vvc, preset=VVC_FAST),
            _vvc_decode,
        ),
    ]
}


def get_codec(name: str) -> Codec:
    if name not in CODECS:
        raise ValueError(f"unknown classic codec {name!r}; available: {sorted(CODECS)}")
    return CODECS[name]
