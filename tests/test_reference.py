import numpy as np
import pytest
import torch
import torch.nn.functional as F

from grm.reference import SIM_MIN, causal_search, descriptors, order_keys


def brute_force(y):
    """Loop over positions: descriptor from the four causal neighbours, argmax over j < i."""
    _, m, h, w = y.shape

    def value(r, c):
        return y[0, :, r, c] if 0 <= r < h and 0 <= c < w else torch.zeros(m)

    desc = []
    for r in range(h):
        for c in range(w):
            d = torch.cat(
                [value(r - 1, c - 1), value(r - 1, c), value(r - 1, c + 1), value(r, c - 1)]
            )
            desc.append(F.normalize(d, dim=0))
    refs, sims = [], []
    for i, d in enumerate(desc):
        best, best_j = -2.0, None
        for j in range(i):
            s = float(desc[j] @ d)
            if s > best + 1e-6:
                best, best_j = s, j
        refs.append(best_j)
        sims.append(best)
    return refs, sims


def test_search_matches_brute_force_and_is_causal():
    torch.manual_seed(0)
    y = torch.randint(-2, 3, (1, 3, 6, 7)).float()
    ref, sim, has_ref = causal_search(descriptors(y), order_keys(6, 7, "raster"), chunk=5)
    _, sims = brute_force(y)  # its choice of reference is not compared: ties may differ
    for i, s_bf in enumerate(sims):
        if i == 0:
            assert not has_ref[0, 0] and sim[0, 0] == SIM_MIN
            continue
        j = int(ref[0, i])
        assert j < i, f"position {i} references {j}, which is not decoded yet"
        # Ties may pick another j, but never a worse one.
        assert abs(max(float(sim[0, i]), SIM_MIN) - max(min(s_bf, 1.0), SIM_MIN)) < 1e-5


def test_future_positions_never_change_the_search():
    torch.manual_seed(1)
    y = torch.randn(1, 4, 5, 5).round()
    ref, sim, _ = causal_search(descriptors(y), order_keys(5, 5, "raster"))
    y2 = y.clone()
    y2[0, :, 3:, :] = torch.randn(4, 2, 5).round() * 5  # rewrite rows 3 and 4
    ref2, sim2, _ = causal_search(descriptors(y2), order_keys(5, 5, "raster"))
    # Positions up to row 3 col 0 only see rows < 3 through their descriptors (and row 3 col 0's
    # descriptor only reaches row 2), so their references cannot move.
    upto = 3 * 5 + 1
    assert torch.equal(ref[:, :upto], ref2[:, :upto])
    assert torch.allclose(sim[:, :upto], sim2[:, :upto])


def test_similarity_is_differentiable():
    y = torch.randn(1, 2, 4, 4, requires_grad=True)
    _, sim, _ = causal_search(descriptors(y), order_keys(4, 4, "raster"))
    sim.sum().backward()
    assert y.grad.abs().sum() > 0


def test_wavefront_order_is_causal_for_context_and_search():
    from grm.reference import decode_groups, order_keys

    h, w = 5, 9
    keys = order_keys(h, w, "wavefront").view(h, w)
    for r in range(h):
        for c in range(w):
            # Every tap of the 5×5 type-A context and of the descriptor decodes strictly earlier.
            for dy in range(-2, 1):
                for dx in range(-2, 3):
                    if (dy, dx) >= (0, 0) or not (0 <= r + dy < h and 0 <= c + dx < w):
                        continue
                    assert keys[r + dy, c + dx] < keys[r, c]
    groups = decode_groups(h, w, "wavefront")
    assert len(groups) == 3 * (h - 1) + w
    assert sorted(torch.cat(groups).tolist()) == list(range(h * w))
    torch.manual_seed(2)
    y = torch.randint(-2, 3, (1, 3, h, w)).float()
    ref, _, has_ref = causal_search(descriptors(y), order_keys(h, w, "wavefront"))
    flat = keys.flatten()
    for i in range(h * w):
        if has_ref[0, i]:
            assert flat[ref[0, i]] < flat[i]


def test_reference_path_sends_no_gradient_to_the_latents():
    """As in the released code: S and φ_ref read a detached ŷ. With the local context
    silenced, stage 2's parameters must not depend on ŷ through any differentiable path."""
    from grm.model import GRM

    model = GRM("tiny")
    with torch.no_grad():
        model.context.weight.zero_()
    y = torch.randint(-3, 4, (1, model.config.M, 6, 6)).float().requires_grad_()
    psi = torch.randn(1, 2 * model.config.M, 6, 6)
    logits, means, scales, chosen = model.entropy_parameters(y, psi)
    out = logits[1].sum() + means[1].sum() + scales[1].sum()
    (grad,) = torch.autograd.grad(out, y, allow_unused=True, retain_graph=True)
    assert grad is None or float(grad.abs().max()) == 0.0
    assert model.ref_conv.weight.requires_grad and chosen["similarity"].numel() == 35
    # the reference convolution itself still learns
    out.backward()
    assert float(model.ref_conv.weight.grad.abs().sum()) > 0


def test_ties_break_in_decoding_order_like_the_coder():
    from grm.reference import order_keys

    # Binary ŷ: many exact ties, several of which (seed 1) the raster index would break
    # differently from the wavefront decoding order.
    y = torch.randint(0, 2, (1, 1, 6, 10), generator=torch.Generator().manual_seed(1)).float()
    for order in ("raster", "wavefront"):
        keys = order_keys(6, 10, order)
        ref, _, has_ref = causal_search(descriptors(y), keys)
        d = descriptors(y)[0]
        decode = sorted(range(60), key=lambda i: (int(keys[i]), i))
        for i in range(60):
            if not has_ref[0, i]:
                continue
            cands = [j for j in decode if keys[j] < keys[i]]
            sims = [float(d[i] @ d[j]) for j in cands]
            best = max(sims)
            assert int(ref[0, i]) == cands[sims.index(best)], (order, i)


@pytest.mark.parametrize("order", ["raster", "wavefront"])
def test_estimated_rate_matches_coded_rate_on_repeated_texture(trained, photo, order):
    from grm import container
    from grm.codec import encode_array
    from grm.image_io import to_tensor
    from grm.model import GRM
    from grm.model_file import LoadedModel
    from grm.pipeline.metrics import bits

    model = GRM({**trained.model.config.to_dict(), "decode_order": order})
    model.load_state_dict(trained.model.state_dict())
    model.eval()
    lm = LoadedModel(model, "t", bytes(16), "grm", model.export_config(), None, {})
    rgb = np.tile(photo[200:232, 200:232], (4, 5, 1))  # 128 x 160 of one tile
    enc = encode_array(lm, rgb)
    with torch.no_grad():
        est = float(bits(model(to_tensor(rgb))["likelihoods"])) / 8
    real = sum(len(s) for s in container.unpack(enc.data).streams)
    assert abs(real - est) <= 0.02 * est + 16, (order, real, est)


def test_reference_usage_is_the_share_of_positions_with_a_strong_reference():
    from grm.model import GRM, REF_USED

    model = GRM("tiny").eval()
    b, m, h, w = 1, model.config.M, 4, 5
    logits = torch.zeros(3, b, m, h, w)
    sim = torch.tensor([0.9, 0.9, 0.4, 1.0])  # four positions with a reference (of 20)
    conf = torch.tensor([0.6, 0.5, 0.9, REF_USED])
    stats = model.entropy_stats(logits, {"similarity": sim, "confidence": conf})
    assert stats["ref_used"] == pytest.approx(2 / 20)  # 0.54 and 0.5 count; 0.45 and 0.36 not
    assert stats["ref_similarity"] == pytest.approx(0.8)
    assert "ref_used" not in model.entropy_stats(logits, None)
