"""Image files ↔ .grm files: the glue between image I/O, the model and the container."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import container
from .errors import DecodeError, FormatError, GrmError, ModelMismatchError, memory_errors
from .image_io import read_image, to_uint8, uint8_view
from .model_file import LoadedModel


@dataclass
class EncodeResult:
    data: bytes
    y_symbols: torch.Tensor
    seconds: float
    height: int
    width: int


def ensure_coding_tables(model: torch.nn.Module) -> None:
    """Build the factorised prior's CDF tables if the weights came without them."""
    eb = getattr(model, "entropy_bottleneck", None)
    if eb is not None and eb._quantized_cdf.numel() == 0:
        model.update(force=True)


def encode_array(lm: LoadedModel, rgb: np.ndarray) -> EncodeResult:
    h, w = rgb.shape[:2]
    container.check_size(h, w)
    ensure_coding_tables(lm.model)
    t = time.perf_counter()
    with torch.no_grad(), memory_errors():
        strings, y_sym = lm.model.compress(uint8_view(rgb))
    data = container.pack(
        container.GrmFile(
            lm.name[: container.MAX_NAME],
            lm.weights_hash,
            h,
            w,
            container.symbols_checksum(y_sym),
            tuple(strings),
        )
    )
    return EncodeResult(data, y_sym, time.perf_counter() - t, h, w)


# Decoding memory grows with the declared size (the latent coder keeps ~42 bytes per pixel
# at paper widths: 3.2 GB in all for 7680×4320), and a 100-byte file can declare any size
# the format allows.
# Like Pillow's decompression-bomb limit, sizes above this are refused unless raised.
MAX_DECODE_PIXELS = 7680 * 4320


def decode_bytes(
    lm: LoadedModel, data: bytes, max_pixels: int = MAX_DECODE_PIXELS
) -> tuple[np.ndarray, torch.Tensor]:
    """Bytes → (H, W, 3) uint8 and ŷ. Never returns a wrong image: checks model and ŷ."""
    f = container.unpack(data)
    if f.height * f.width > max_pixels:
        raise FormatError(
            f"the file declares {f.width}x{f.height} = {f.height * f.width:,} pixels, above "
            f"the decoder's limit of {max_pixels:,} (raise it with --max-pixels)"
        )
    if f.weights_hash != lm.weights_hash:
        raise ModelMismatchError(
            f"file was written with model {f.model_name!r} ({f.weights_hash.hex()[:12]}), "
            f"not {lm.name!r} ({lm.weights_hash.hex()[:12]})"
        )
    if len(f.streams) != 2:
        raise FormatError("corrupt .grm file (expected 2 streams)")
    ensure_coding_tables(lm.model)
    try:
        with torch.no_grad(), memory_errors():  # not the file's fault: said as such
            x_hat, y_sym = lm.model.decompress(list(f.streams), f.height, f.width)
    except GrmError:
        raise
    except (RuntimeError, ValueError, IndexError, OverflowError) as e:
        raise DecodeError(f"bitstream could not be decoded ({e})") from None
    if container.symbols_checksum(y_sym) != f.symbols_checksum:
        raise DecodeError(
            "decoded latents do not match the encoder's checksum "
            "(corrupt stream or a decoder that differs from the encoder)"
        )
    return to_uint8(x_hat), y_sym


def compress_file(lm: LoadedModel, src: str | Path) -> tuple[EncodeResult, list[str]]:
    rgb, notes = read_image(src)
    return encode_array(lm, rgb), notes


def read_grm(path: str | Path) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"file not found: {path}")
    return path.read_bytes()
