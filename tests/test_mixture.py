import numpy as np
import torch

from grm.mixture import gaussian_bin_prob, mixture_likelihood


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


def test_integer_coding_tables_hold_the_mixture_and_its_tail():
    """The integer tables (lookup-table softmax and Φ, rounded log σ) carry the float
    mixture's bin probabilities to within the tables' resolution."""
    from grm.integer_ops import FRAC
    from grm.integer_tables import Tables, build_tables

    torch.manual_seed(1)
    logits, means, log_scales = (
        torch.randn(3, 7),
        torch.randn(3, 7) * 10,
        torch.rand(3, 7) * 3.5 - 1,
    )
    tables = Tables(build_tables())

    def q(v):
        return torch.round(v * 2**FRAC).long()

    t = tables.coding_tables(q(logits), q(means), tables.scale_index(q(log_scales)), False)
    length = t.probs.shape[1] - 1
    assert t.probs.shape == (7, length + 1) and t.offsets.shape == (7,)
    assert (t.probs >= 0).all()
    probs = t.probs / t.probs.sum(1, keepdims=True)
    scales = 0.11 + torch.exp(log_scales)
    for c in range(7):
        v = torch.arange(length).double() + float(t.offsets[c])
        expect = mixture_likelihood(
            v.view(-1, 1).expand(-1, 7).float(),
            logits.unsqueeze(1),
            means.unsqueeze(1),
            scales.unsqueeze(1),
        )[:, c]
        assert np.abs(probs[c, :length] - expect.numpy()).max() < 3e-4, np.abs(
            probs[c, :length] - expect.numpy()
        ).max()
    assert (t.spread >= 1).all()
