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


def _random_norm(channels: int, inverse: bool, subtractive: bool, seed: int = 0) -> GSDN:
    """A layer with random positive parameters (not the near-identity init)."""
    g = torch.Generator().manual_seed(seed)
    layer = GSDN(channels, inverse=inverse, subtractive=subtractive)
    with torch.no_grad():
        layer.beta.copy_(layer.beta_reparam.init(0.5 + torch.rand(channels, generator=g)))
        layer.gamma.copy_(
            layer.gamma_reparam.init(0.3 * torch.rand(channels, channels, generator=g))
        )
        if subtractive:
            layer.beta_shift.copy_(
                layer.shift_reparam.init(0.2 * torch.rand(channels, generator=g))
            )
            layer.gamma_shift.copy_(
                layer.shift_reparam.init(0.2 * torch.rand(channels, channels, generator=g))
            )
    return layer


@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("subtractive", [True, False])
def test_gsdn_computes_its_formula(subtractive, inverse):
    """forward y = (x - (b' + G'x)) / sqrt(b + G x²), inverse x = y sqrt(b + G y²) + (b' + G'y),
    written out per channel with random parameters; subtractive=False drops the shift (GDN)."""
    layer = _random_norm(5, inverse, subtractive)
    x = torch.randn(2, 5, 4, 3) * 2

    def mix(w, v):
        return torch.einsum("oi,bihw->bohw", w, v)

    beta, gamma = layer.beta_reparam(layer.beta), layer.gamma_reparam(layer.gamma)
    norm = torch.sqrt(beta.view(1, -1, 1, 1) + mix(gamma, x * x))
    shift = 0
    if subtractive:
        shift = layer.shift_reparam(layer.beta_shift).view(1, -1, 1, 1) + mix(
            layer.shift_reparam(layer.gamma_shift), x
        )
    expect = x * norm + shift if inverse else (x - shift) / norm
    with torch.no_grad():
        assert torch.allclose(layer(x), expect, rtol=1e-5, atol=1e-6)
        if subtractive:  # the shift is real: without it the output differs
            assert (layer(x) - (x * norm if inverse else x / norm)).abs().max() > 0.1


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_mode_equals_compressai_gdn(inverse):
    from compressai.layers import GDN

    ours, theirs = _random_norm(6, inverse, subtractive=False, seed=3), GDN(6, inverse=inverse)
    with torch.no_grad():
        theirs.beta.copy_(theirs.beta_reparam.init(ours.beta_reparam(ours.beta)))
        theirs.gamma.copy_(theirs.gamma_reparam.init(ours.gamma_reparam(ours.gamma)))
        x = torch.randn(2, 6, 5, 5)
        assert torch.allclose(ours(x), theirs(x), rtol=1e-5, atol=1e-6)


def test_gsdn_learned_inverse_starts_within_two_percent_of_the_exact_one():
    # At init (G = 0.1 I, G' = 0.1 I) forward ≈ 0.9 x and inverse ≈ 1.1 y for small x.
    x = torch.randn(1, 4, 3, 3) * 0.1
    fwd, inv = GSDN(4), GSDN(4, inverse=True)
    with torch.no_grad():
        err = (inv(fwd(x)) - x).abs() / x.abs().clamp_min(1e-3)
    assert float(err.max()) < 0.02


def test_masked_conv_is_causal():
    for kind, k in (("A", 5), ("B", 3)):
        conv = MaskedConv2d(2, 3, k, kind)
        x = torch.randn(1, 2, 9, 9, requires_grad=True)
        conv(x)[0, :, 4, 4].sum().backward()
        g = x.grad[0].abs().sum(0)
        assert g[5:].sum() == 0 and g[4, 5:].sum() == 0  # nothing after the centre
        assert (g[4, 4] > 0) == (kind == "B")  # centre only for type B


def test_causal_taps_match_convolution():
    conv = MaskedConv2d(3, 4, 5, "A")
    x = torch.randn(1, 3, 7, 7)
    w, taps = conv.causal_taps()
    r, c = 4, 3
    patch = torch.stack([x[0, :, r + dy, c + dx] for dy, dx in taps]).flatten()
    assert torch.allclose(w @ patch + conv.bias, conv(x)[0, :, r, c], atol=1e-5)
    assert len(taps) == 12
