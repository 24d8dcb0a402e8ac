import dataclasses
import struct
import zlib

import numpy as np
import pytest
import torch

from grm import container
from grm.codec import decode_bytes, encode_array
from grm.errors import DecodeError, FormatError, ModelMismatchError
from grm.image_io import to_tensor
from grm.pipeline.metrics import bits, psnr
from grm.model import GRM
from grm.model_file import load_model, save_model


@pytest.mark.parametrize("size", [(1, 1), (17, 31), (65, 64), (3, 200)])
def test_round_trip_is_bit_exact_on_odd_sizes(trained, size):
    rng = np.random.default_rng(sum(size))
    rgb = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
    enc = encode_array(trained, rgb)
    out, y_dec = decode_bytes(trained, enc.data)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert torch.equal(enc.y_symbols, y_dec)


def test_photo_round_trip_and_real_size_matches_estimate(trained, photo):
    rgb = photo[:256, 128:384]
    enc = encode_array(trained, rgb)
    out, y_dec = decode_bytes(trained, enc.data)
    assert torch.equal(enc.y_symbols, y_dec)
    assert psnr(rgb, out) > 13  # a 300-step tiny model; a wrong decode gives ~8 dB
    with torch.no_grad():
        est_bytes = float(bits(trained.model(to_tensor(rgb))["likelihoods"])) / 8
    f = container.unpack(enc.data)
    stream_bytes = sum(len(s) for s in f.streams)
    # 2% of the estimate plus the rANS coders' few bytes of flush per stream.
    assert stream_bytes <= 1.02 * est_bytes + 8 * len(f.streams), (stream_bytes, est_bytes)
    assert stream_bytes >= 0.98 * est_bytes - 8


@pytest.mark.parametrize(
    "config",
    [
        {"base": "tiny", "reference": "off"},
        {"base": "tiny", "likelihood": "final-stage", "norm": "gdn"},
    ],
)
def test_ablations_round_trip(config, tmp_path):
    torch.manual_seed(0)
    model = GRM(config).eval()
    model.update(force=True)
    path = save_model(model, tmp_path / "m.safetensors", "abl")
    lm = load_model(path)
    rgb = np.random.default_rng(0).integers(0, 256, size=(40, 70, 3), dtype=np.uint8)
    enc = encode_array(lm, rgb)
    assert torch.equal(decode_bytes(lm, enc.data)[1], enc.y_symbols)


@pytest.fixture(scope="module")
def encoded(trained, photo):
    return encode_array(trained, photo[:64, :96]).data


def test_truncated_files_give_format_error(trained, encoded):
    for n in [0, 3, 5, 20, len(encoded) // 2, len(encoded) - 1]:
        with pytest.raises(FormatError):
            decode_bytes(trained, encoded[:n])


def test_corrupted_files_give_defined_errors(trained, encoded):
    rng = np.random.default_rng(0)
    for _ in range(50):
        data = bytearray(encoded)
        pos = int(rng.integers(0, len(data)))
        data[pos] ^= 1 << int(rng.integers(0, 8))
        with pytest.raises((FormatError, DecodeError)):
            decode_bytes(trained, bytes(data))


def test_corrupt_stream_with_valid_crc_is_caught_by_symbol_checksum(trained, encoded):
    f = container.unpack(encoded)
    y = bytearray(f.streams[1])
    y[len(y) // 2] ^= 0x55
    forged = container.pack(dataclasses.replace(f, streams=(f.streams[0], bytes(y))))
    with pytest.raises(DecodeError):
        decode_bytes(trained, forged)


def test_foreign_file_and_wrong_model(trained, encoded, tmp_path):
    with pytest.raises(FormatError, match="magic"):
        decode_bytes(trained, b"\x89PNG\r\n\x1a\n" + bytes(100))
    other = GRM("tiny").eval()
    other.update(force=True)
    lm = load_model(save_model(other, tmp_path / "other.safetensors", "other"))
    with pytest.raises(ModelMismatchError):
        decode_bytes(lm, encoded)


def test_header_sizes_are_not_trusted():
    f = container.GrmFile("m", bytes(16), 10, 10, bytes(8), (b"ab", b"cd"))
    data = bytearray(container.pack(f))
    with pytest.raises(FormatError):
        container.pack(container.GrmFile("m", bytes(16), 1 << 16, 1 << 16, bytes(8), (b"a", b"b")))
    # A forged header that claims a huge stream, with a recomputed CRC, is refused.
    body = bytes(data[:-4])
    at = body.index(b"\x02\x00\x00\x00\x02")  # n_streams, first length
    forged = body[: at + 1] + struct.pack(">I", 1 << 30) + body[at + 5 :]
    with pytest.raises(FormatError, match="stream lengths"):
        container.unpack(forged + struct.pack(">I", zlib.crc32(forged)))
    assert container.unpack(bytes(data)) == f


def test_wavefront_decoding_is_bit_exact_and_matches_estimate(tmp_path, photo):
    from conftest import quick_train

    model = quick_train({"base": "tiny", "decode_order": "wavefront"}, photo, steps=150)
    lm = load_model(save_model(model, tmp_path / "wf.safetensors", "wf"))
    for rgb in (photo[:1, :1], photo[:17, :31], photo[:128, :192]):
        enc = encode_array(lm, rgb)
        out, y = decode_bytes(lm, enc.data)
        assert torch.equal(y, enc.y_symbols) and out.shape == rgb.shape
    with torch.no_grad():
        est = float(bits(lm.model(to_tensor(photo[:128, :192]))["likelihoods"])) / 8
    real = sum(len(s) for s in container.unpack(enc.data).streams)
    assert abs(real - est) <= 0.02 * est + 16


def test_new_models_decode_in_wavefront_order():
    """Wavefront is the default (README: "Decode order")."""
    assert GRM("tiny").config.decode_order == "wavefront"


def test_escaped_symbols_round_trip():
    """Values far outside the window (the escape path) decode exactly."""
    from grm.latent_coder import decode_latents, encode_latents
    from grm.model import GRM

    torch.manual_seed(0)
    model = GRM("tiny").eval()
    y = torch.randint(-3, 4, (1, 24, 4, 4)).float()
    y[0, 5, 1, 1], y[0, 0, 0, 0], y[0, 7, 1, 2] = 900, -32768, 32768
    z_hat = torch.zeros(1, 16, 1, 1)
    coder = model.integer_model()
    data = encode_latents(coder, y, z_hat)
    assert torch.equal(decode_latents(coder, data, z_hat), y)


def test_files_decode_across_transform_precisions(trained_model_path, photo):
    """bf16 transforms (auto where the hardware has it) and fp32 write files the other
    decodes: the entropy model is integer either way, only pixels move by rounding noise."""
    fp32 = load_model(trained_model_path, precision="fp32")
    bf16 = load_model(trained_model_path, precision="bf16")
    assert (fp32.model.transform_precision, bf16.model.transform_precision) == ("fp32", "bf16")
    rgb = photo[:96, :128]
    for enc, dec in ((fp32, bf16), (bf16, fp32)):
        data = encode_array(enc, rgb).data
        there, y_there = decode_bytes(dec, data)
        here, y_here = decode_bytes(enc, data)
        assert torch.equal(y_there, y_here)  # the latents are exact across formats
        assert psnr(there, here) > 35, (enc.model.transform_precision, psnr(there, here))
        assert abs(psnr(rgb, there) - psnr(rgb, here)) < 0.2


def test_the_same_weights_export_to_the_same_bytes_in_any_process(tmp_path):
    """safetensors orders its header by a hash map seeded per process; the model file's
    bytes, and so its hash (the one .grm files carry), must not depend on it."""
    import subprocess
    import sys

    torch.manual_seed(0)
    save_model(GRM("tiny").eval(), tmp_path / "first.safetensors", "m")
    code = (
        "import sys; from grm.model_file import load_model, save_model;"
        "save_model(load_model(sys.argv[1]).model, sys.argv[2], 'm')"
    )
    for i in range(2):
        out = tmp_path / f"again{i}.safetensors"
        subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / "first.safetensors"), str(out)], check=True
        )
        assert out.read_bytes() == (tmp_path / "first.safetensors").read_bytes()
    assert load_model(out).weights_hash == load_model(tmp_path / "first.safetensors").weights_hash
