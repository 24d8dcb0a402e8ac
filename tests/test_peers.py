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
