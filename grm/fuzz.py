"""Hostile-input generator for the .grm decoder, shared by the tests and the benchmark.

Mutations: bit flips, byte overwrites, truncation, insertion, deletion, splicing two
files, random bytes; half of them get a recomputed CRC so they reach the parser and
the entropy decoder instead of stopping at the checksum.
"""

from __future__ import annotations

import struct
import time
import zlib

import numpy as np

from . import container
from .codec import decode_bytes
from .errors import GrmError


def _fix_crc(data: bytes) -> bytes:
    if len(data) < 8:
        return data
    body = data[:-4]
    return body + struct.pack(">I", zlib.crc32(body))


def mutate(seeds: list[bytes], rng: np.random.Generator) -> bytes:
    data = bytearray(seeds[int(rng.integers(len(seeds)))])
    kind = int(rng.integers(7))
    n = len(data)
    if kind == 0:  # bit flips
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(n))
            data[i] ^= 1 << int(rng.integers(8))
    elif kind == 1:  # byte overwrites
        for _ in range(int(rng.integers(1, 9))):
            data[int(rng.integers(n))] = int(rng.integers(256))
    elif kind == 2:  # truncation
        data = data[: int(rng.integers(n))]
    elif kind == 3:  # insertion
        i = int(rng.integers(n + 1))
        data[i:i] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
    elif kind == 4:  # deletion
        i = int(rng.integers(n))
        del data[i : i + int(rng.integers(1, 64))]
    elif kind == 5:  # splice two files
        other = seeds[int(rng.integers(len(seeds)))]
        data = data[: int(rng.integers(n + 1))] + other[int(rng.integers(len(other) + 1)) :]
    else:  # random bytes, sometimes with our magic
        data = bytearray(rng.integers(0, 256, int(rng.integers(0, 400)), dtype=np.uint8).tobytes())
        if rng.random() < 0.5:
            data[:5] = container.MAGIC + bytes([container.VERSION])
    out = bytes(data)
    return _fix_crc(out) if rng.random() < 0.5 else out


def check(lm, data: bytes) -> tuple[str, float]:
    """Decode one input: 'ok' or 'rejected'; anything else propagates (a bug)."""
    t = time.perf_counter()
    try:
        decode_bytes(lm, data)
        outcome = "ok"
    except GrmError:
        outcome = "rejected"
    return outcome, time.perf_counter() - t
