import torch

from grm.mixture import coding_cdfs, gaussian_bin_prob, mixture_likelihood


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


def test_coding_cdfs_are_valid_16_bit_tables():
    torch.manual_seed(1)
    logits, means, scales = torch.randn(3, 7), torch.randn(3, 7) * 10, torch.rand(3, 7) * 30 + 0.11
    cdf, offsets, length = coding_cdfs(logits, means, scales)
    assert cdf.shape == (7, length)
    assert (cdf[:, 0] == 0).all() and (cdf[:, -1] == 1 << 16).all()
    assert (cdf.diff(dim=1) >= 1).all(), "every symbol, escape included, needs frequency ≥ 1"
    assert offsets.shape == (7,)
