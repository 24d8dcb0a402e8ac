"""Hostile .grm files: every input decodes correctly or raises grm's own error."""

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from grm import container
from grm.codec import decode_bytes, encode_array
from grm.errors import GrmError
from grm.fuzz import check, mutate

SEED_SIZES = [(1, 1), (16, 40), (64, 64), (70, 33)]


def seeds(lm):
    rng = np.random.default_rng(0)
    return [
        encode_array(lm, rng.integers(0, 256, size=(*s, 3), dtype=np.uint8)).data
        for s in SEED_SIZES
    ]


def test_mutated_files_are_decoded_or_rejected(trained):
    files = seeds(trained)
    rng = np.random.default_rng(1234)
    outcomes = {"ok": 0, "rejected": 0}
    slowest = 0.0
    for _ in range(300):
        outcome, seconds = check(trained, mutate(files, rng))
        outcomes[outcome] += 1
        slowest = max(slowest, seconds)
    assert outcomes["rejected"] > 250
    assert slowest < 30


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_rejected(trained, data):
    outcome, _ = check(trained, data)
    assert outcome == "rejected"


@pytest.fixture(scope="module")
def photo_file(trained, photo):
    return container.unpack(encode_array(trained, photo[:64, :64]).data)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_crc_valid_stream_damage_is_rejected(trained, photo_file, data):
    # Damage only the ŷ stream and recompute the CRC: the latent checksum must catch it.
    f = photo_file
    y = bytearray(f.streams[1])
    i = data.draw(st.integers(0, len(y) - 1))
    y[i] ^= data.draw(st.integers(1, 255))
    forged = container.pack(dataclasses.replace(f, streams=(f.streams[0], bytes(y))))
    try:
        _, y_dec = decode_bytes(trained, forged)
    except GrmError:
        return
    # A flip in the last bytes of a rANS stream can leave every symbol intact: then the
    # image is the right one.
    assert container.symbols_checksum(y_dec) == f.symbols_checksum
