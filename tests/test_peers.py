"""compressai peers behind grm's interface: any size, real bytes, exact latents."""

import numpy as np
import pytest
import torch

from grm.codec import decode_bytes, encode_array
from grm.model_file import load_model, save_model
from grm.peers import Peer


@pytest.mark.parametrize("arch", ["bmshj2018-hyperprior", "mbt2018"])
def test_peer_round_trip(arch, tmp_path):
    torch.manual_seed(0)
    model = Peer(arch, "tiny").eval()
    model.update(force=True)
    lm = load_model(save_model(model, tmp_path / "p.safetensors", arch))
    assert lm.arch == arch and lm.config == {"N": 16, "M": 24}
    rgb = np.random.default_rng(0).integers(0, 256, size=(37, 70, 3), dtype=np.uint8)
    enc = encode_array(lm, rgb)
    out, y = decode_bytes(lm, enc.data)
    assert out.shape == rgb.shape
    assert torch.equal(y, enc.y_symbols)
    with torch.no_grad():
        fwd = lm.model(torch.rand(2, 3, 50, 30))
    assert fwd["x_hat"].shape == (2, 3, 50, 30)


def test_a_peer_refuses_grm_only_model_switches():
    assert Peer("mbt2018", {"base": "tiny", "M": 32}).widths == {"N": 16, "M": 32}
    with pytest.raises(ValueError, match="reference"):
        Peer("mbt2018", {"base": "tiny", "reference": "off"})


def test_minnen_context_by_wavefronts_codes_compressais_symbols():
    """The wavefront coder gives the symbols of compressai's loop over every position (the
    same ŷ up to float rounding of the means) and decodes them exactly."""
    import torch.nn.functional as F

    from grm.peers import _context_decode, _context_encode

    torch.manual_seed(0)
    net = Peer("mbt2018", "tiny").eval().net
    net.update(force=True)
    y = 4 * torch.randn(1, net.M, 9, 13)  # odd sides: wavefronts of every length
    params = torch.randn(1, 2 * net.M, 9, 13)
    with torch.no_grad():
        raster = F.pad(y, (2, 2, 2, 2))
        net._compress_ar(raster, params, 9, 13, 5, 2)
        stream, y_hat = _context_encode(net, y.clone(), params)
        decoded = _context_decode(net, stream, params)
    assert (raster[..., 2:-2, 2:-2] - y_hat).abs().max() < 1e-3  # a changed symbol moves ŷ by 1
    assert y_hat.abs().max() > 5 and torch.equal(decoded, y_hat)


@pytest.mark.parametrize("arch", ["grm", "bmshj2018-hyperprior", "mbt2018"])
def test_the_bit_estimate_skips_the_synthesis_and_keeps_the_likelihoods(arch):
    """The evaluation's estimate runs the forward pass without g_s: the same likelihoods
    (and grm's reference statistics), and the synthesis back in place afterwards."""
    from grm.model_file import build
    from grm.pipeline.evaluation import without_synthesis

    torch.manual_seed(0)
    model = build(arch, "tiny").eval()
    owner = model.net if arch != "grm" else model
    synthesis = owner.g_s
    calls = []
    hook = synthesis.register_forward_hook(lambda *a: calls.append(1))
    x = torch.rand(1, 3, 70, 45)
    with torch.no_grad():
        full = model(x)
        assert calls == [1]
        with without_synthesis(model):
            estimate = model(x)
    hook.remove()
    assert calls == [1] and owner.g_s is synthesis
    for k, lik in full["likelihoods"].items():
        assert torch.equal(estimate["likelihoods"][k], lik), k
    assert estimate.get("stats") == full.get("stats")
