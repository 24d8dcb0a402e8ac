"""The .grm file format.

    magic "GRMc" | version u8 | name_len u8 | name | weights hash (16 B)
    | height u32 | width u32 | ŷ checksum (8 B) | n_streams u8 | n × length u32
    | streams | crc32 of all preceding bytes (u32)

All integers big-endian. The parser checks the CRC before it reads a field, and
checks every size against the bytes actually present and fixed limits before it
allocates anything, so a hostile header can neither crash nor exhaust memory.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass

from .errors import FormatError

MAGIC = b"GRMc"
# 2: the ŷ tables come from the integer entropy model (portable). Version 1 files were
# coded with float tables that only the machine (and thread count) that wrote them can
# reproduce, so they are refused with an explanation rather than decoded by chance.
VERSION = 2
MAX_NAME = 64
MAX_STREAMS = 4
MAX_SIDE = 1 << 16
MAX_PIXELS = 1 << 28
HASH_LEN = 16
CHECKSUM_LEN = 8


@dataclass(frozen=True)
class GrmFile:
    model_name: str
    weights_hash: bytes
    height: int
    width: int
    symbols_checksum: bytes
    streams: tuple[bytes, ...]


def symbols_checksum(symbols) -> bytes:
    """Checksum of the decoded latents: as int32 when integral (grm), else float32 bits."""
    import numpy as np

    arr = symbols.detach().cpu().numpy() if hasattr(symbols, "detach") else np.asarray(symbols)
    integral = np.array_equal(arr, np.round(arr))
    data = arr.astype("<i4") if integral else arr.astype("<f4")
    return hashlib.sha256(np.ascontiguousarray(data).tobytes()).digest()[:CHECKSUM_LEN]


def check_size(height: int, width: int) -> None:
    if not (1 <= height < MAX_SIDE and 1 <= width < MAX_SIDE) or height * width > MAX_PIXELS:
        raise FormatError(
            f"image size {width}x{height} is outside the supported range "
            f"(each side < {MAX_SIDE}, at most {MAX_PIXELS} pixels)"
        )


def pack(f: GrmFile) -> bytes:
    name = f.model_name.encode("utf-8")
    if len(name) > MAX_NAME:
        raise FormatError(f"model name longer than {MAX_NAME} bytes")
    if len(f.weights_hash) != HASH_LEN or len(f.symbols_checksum) != CHECKSUM_LEN:
        raise FormatError("bad hash length")
    if not 1 <= len(f.streams) <= MAX_STREAMS:
        raise FormatError(f"1 to {MAX_STREAMS} streams allowed")
    check_size(f.height, f.width)
    parts = [
        MAGIC,
        struct.pack(">BB", VERSION, len(name)),
        name,
        f.weights_hash,
        struct.pack(">II", f.height, f.width),
        f.symbols_checksum,
        struct.pack(">B", len(f.streams)),
        b"".join(struct.pack(">I", len(s)) for s in f.streams),
        *f.streams,
    ]
    body = b"".join(parts)
    return body + struct.pack(">I", zlib.crc32(body))


class _Reader:
    def __init__(self, data: bytes, end: int):
        self.data, self.pos, self.end = data, 0, end

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise FormatError("truncated .grm file")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))


def unpack(data: bytes) -> GrmFile:
    data = bytes(data)
    if len(data) < len(MAGIC) + 1 or data[: len(MAGIC)] != MAGIC:
        raise FormatError("not a .grm file (bad magic)")
    if data[len(MAGIC)] == 1:
        raise FormatError(
            "this .grm file was written by an older grm (format 1) whose float entropy model "
            "decodes only on the machine and thread count that wrote it; re-encode the source "
            "image with this grm (format 2 files decode on any machine)"
        )
    if data[len(MAGIC)] != VERSION:
        raise FormatError(
            f"unsupported .grm format version {data[len(MAGIC)]} (this grm reads {VERSION})"
        )
    if len(data) < len(MAGIC) + 4 + 4:
        raise FormatError("truncated .grm file")
    (crc,) = struct.unpack(">I", data[-4:])
    if zlib.crc32(data[:-4]) != crc:
        raise FormatError("corrupt or truncated .grm file (checksum mismatch)")
    r = _Reader(data, len(data) - 4)
    r.take(len(MAGIC) + 1)
    (name_len,) = r.unpack(">B")
    if name_len > MAX_NAME:
        raise FormatError("corrupt .grm header (model name too long)")
    try:
        name = r.take(name_len).decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError("corrupt .grm header (model name is not UTF-8)") from e
    weights_hash = r.take(HASH_LEN)
    height, width = r.unpack(">II")
    check_size(height, width)
    checksum = r.take(CHECKSUM_LEN)
    (count,) = r.unpack(">B")
    if not 1 <= count <= MAX_STREAMS:
        raise FormatError("corrupt .grm header (stream count)")
    lengths = r.unpack(">" + "I" * count)
    if sum(lengths) != r.end - r.pos:
        raise FormatError("corrupt .grm header (stream lengths do not match the file size)")
    streams = tuple(r.take(n) for n in lengths)
    return GrmFile(name, weights_hash, height, width, checksum, streams)
