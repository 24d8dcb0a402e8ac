import pytest
import torch

from grm.layers import GSDN, MaskedConv2d, make_norm


@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("kind", ["gsdn", "gdn"])
def test_norm_shapes_and_gradients(kind, inverse):
    layer = make_norm(kind, 8, inverse=inverse)
    x = torch.randn(2, 8, 5, 7, requires_grad=True)
    y = layer(x)
    assert y.shape == x.shape
    y.square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for p in layer.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


def test_gsdn_subtracts_mean_and_gdn_does_not():
    x = torch.randn(1, 4, 6, 6) + 3.0
    gsdn, gdn = GSDN(4), GSDN(4, subtractive=False)
    # Same divisive parameters: GSDN output is GDN's numerator shifted by 0.1·x.
    ratio = gsdn(x) / gdn(x)
    assert torch.allclose(ratio, torch.full_like(ratio, 0.9), atol=1e-5)


def test_gsdn_inverse_undoes_forward_at_init():
    # With fresh parameters the learned inverse is close to the exact inverse for small x.
    x = torch.randn(1, 4, 3, 3) * 0.1
    fwd, inv = GSDN(4), GSDN(4, inverse=True)
    assert torch.allclose(inv(fwd(x)), x, atol=0.05)


def test_masked_conv_is_causal():
    for kind, k in (("A", 5), ("B", 3)):
        conv = MaskedConv2d(2, 3, k, kind)
        x = torch.randn(1, 2, 9, 9, requires_grad=True)
        conv(x)[0, :, 4, 4].sum().backward()
        g = x.grad[0].abs().sum(0)
        assert g[5:].sum() == 0 and g[4, 5:].sum() == 0           # nothing after the centre
        assert (g[4, 4] > 0) == (kind == "B")                      # centre only for type B


def test_causal_taps_match_convolution():
    conv = MaskedConv2d(3, 4, 5, "A")
    x = torch.randn(1, 3, 7, 7)
    w, taps = conv.causal_taps()
    r, c = 4, 3
    patch = torch.stack([x[0, :, r + dy, c + dx] for dy, dx in taps]).flatten()
    assert torch.allclose(w @ patch + conv.bias, conv(x)[0, :, r, c], atol=1e-5)
    assert len(taps) == 12
