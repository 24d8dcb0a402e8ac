"""Tiled transforms equal the untiled ones to float rounding, and the codec stays exact."""

import torch

from grm.model import GRM
from grm.strides import Y_STRIDE
from grm.tiling import tiled


def test_tiles_match_the_whole_image():
    torch.manual_seed(0)
    model = GRM("tiny").eval()
    x = torch.rand(1, 3, 9 * Y_STRIDE, 13 * Y_STRIDE)
    with torch.no_grad():
        y = model.g_a(x)
        y_t = tiled(model.g_a, x, Y_STRIDE, 1, tile=4, margin=4)
        assert float((y - y_t).abs().max()) < 1e-4 * float(y.abs().max())
        y_hat = torch.round(y)
        x_hat = model.g_s(y_hat)
        x_t = tiled(model.g_s, y_hat, 1, Y_STRIDE, tile=3, margin=4)
        assert float((x_hat - x_t).abs().max()) < 1e-4 * float(x_hat.abs().max())
        # cropped in place: the same pixels, only the requested size
        x_c = tiled(model.g_s, y_hat, 1, Y_STRIDE, tile=3, margin=4, size=(x_hat.shape[2] - 21, 50))
        assert torch.equal(x_c, x_t[..., : x_hat.shape[2] - 21, :50])
        # a margin that is too small shows: the test can fail
        x_bad = tiled(model.g_s, y_hat, 1, Y_STRIDE, tile=3, margin=0)
        assert float((x_hat - x_bad).abs().max()) > 1e-3 * float(x_hat.abs().max())


def test_tiled_round_trip_is_exact(trained, photo, monkeypatch):
    from grm.codec import decode_bytes, encode_array

    rgb = photo[:150, :200]  # 10 × 13 latents
    enc = encode_array(trained, rgb)
    whole, _ = decode_bytes(trained, enc.data)
    monkeypatch.setattr(trained.model, "tile", 3)  # 4 × 5 tiles on a small photo
    out, y = decode_bytes(trained, enc.data)
    # the latents decode the same; tiles change the synthesis' float rounding only
    assert torch.equal(y, enc.y_symbols) and out.shape == rgb.shape
    assert abs(out.astype(int) - whole.astype(int)).max() <= 1
    tiled_enc = encode_array(trained, rgb)
    _, y = decode_bytes(trained, tiled_enc.data)
    assert torch.equal(y, tiled_enc.y_symbols)


def test_uint8_photos_code_as_their_float_version(trained, photo, monkeypatch):
    """The codec converts 8-bit photos to float a tile at a time (a large photo is never
    held as float32); the latents and bytes equal those of the photo converted at once."""
    from grm.image_io import to_tensor, uint8_view

    monkeypatch.setattr(trained.model, "tile", 3)
    rgb = photo[:150, :200]
    with torch.no_grad():
        a = trained.model.compress(uint8_view(rgb))
        b = trained.model.compress(to_tensor(rgb))
    assert a[0] == b[0] and torch.equal(a[1], b[1])
