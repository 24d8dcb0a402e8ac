import numpy as np
import torch

from grm.mixture import coding_tables, gaussian_bin_prob, mixture_likelihood


def test_mixture_sums_to_one_over_symbols():
    torch.manual_seed(0)
    logits = torch.randn(3, 5)
    means = torch.randn(3, 5) * 3
    scales = torch.rand(3, 5) * 4 + 0.11
    v = torch.arange(-200, 201).float().view(-1, 1)
    total = sum(mixture_likelihood(v[k].expand(5), logits, means, scales) for k in range(len(v)))
    assert torch.allclose(total, torch.ones(5), atol=1e-5)


def test_bin_probability_matches_normal_cdf():
    d = torch.distributions.Normal(torch.tensor(0.3), torch.tensor(1.7))
    p = gaussian_bin_prob(torch.tensor(2.0), torch.tensor(0.3), torch.tensor(1.7))
    assert torch.allclose(p, d.cdf(torch.tensor(2.5)) - d.cdf(torch.tensor(1.5)), atol=1e-6)


def test_coding_tables_hold_the_mixture_and_its_tail():
    torch.manual_seed(1)
    logits, means, scales = torch.randn(3, 7), torch.randn(3, 7) * 10, torch.rand(3, 7) * 30 + 0.11
    t = coding_tables(logits, means, scales)
    length = t.probs.shape[1] - 1
    assert t.probs.shape == (7, length + 1) and t.offsets.shape == (7,)
    assert (t.probs >= 0).all()
    assert np.allclose(t.probs.sum(1), 1.0, atol=1e-5), "window + escape bin carry all the mass"
    # The window entries are the mixture's own bin probabilities.
    c = 3
    v = torch.tensor(float(t.offsets[c] + length // 2))
    expect = mixture_likelihood(v.expand(7), logits, means, scales)[c]
    assert abs(float(t.probs[c, length // 2]) - float(expect)) < 1e-5
    assert (t.spread >= 1).all()


def test_escaped_symbols_round_trip():
    """Values far outside the window (the escape path) decode exactly."""
    from grm.latent_coder import decode_latents, encode_latents
    from grm.model import GRM
    torch.manual_seed(0)
    model = GRM("tiny").eval()
    y = torch.randint(-3, 4, (1, 24, 2, 3)).float()
    y[0, 5, 1, 1], y[0, 0, 0, 0], y[0, 7, 1, 2] = 900, -32768, 32768
    psi = torch.zeros(1, 48, 2, 3)
    data = encode_latents(model, y, psi)
    assert torch.equal(decode_latents(model, data, psi), y)
