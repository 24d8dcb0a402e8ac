"""Seed means: several trainings of one model averaged, and the noise left between means."""

import math

import numpy as np
import pytest
from test_intervals import photo_curve

from grm.pipeline.intervals import bd_rate_intervals
from grm.pipeline.report import bd_rate, markdown
from grm.pipeline.seeds import mean_curve, seed_groups, seed_sigma

KINDS = {f"p{i}": ("clean" if i < 4 else "textured" if i < 8 else "repeated") for i in range(12)}


def test_variants_that_differ_only_in_their_seed_form_a_group():
    specs = {
        "grm": {"arch": "grm"},
        "grm-seed1": {"arch": "grm", "seed": 1},
        "mbt2018": {"arch": "mbt2018"},
        "grm-noref": {"arch": "grm", "model": {"reference": False}},
        "grm-noref-seed2": {"seed": 2, "arch": "grm", "model": {"reference": False}},
    }
    assert seed_groups(specs) == [
        ["grm", "grm-seed1"],
        ["mbt2018"],
        ["grm-noref", "grm-noref-seed2"],
    ]


def test_a_mean_curve_averages_every_photo_over_the_seeds():
    a = photo_curve("a", "grm", 1.0, 0.0)
    b = photo_curve("b", "seed", 1.2, 0.4)
    mean = mean_curve([a, b], "a", "A", "grm")
    for pa, pb, pm in zip(a.points, b.points, mean.points):
        for photo, row in pm["photos"].items():
            for m in ("bpp", "psnr", "ms_ssim"):
                assert row[m] == pytest.approx(
                    (pa["photos"][photo][m] + pb["photos"][photo][m]) / 2
                )
        assert pm["psnr"] == pytest.approx((pa["psnr"] + pb["psnr"]) / 2)
        assert pm["bpp"] == pytest.approx((pa["bpp"] + pb["bpp"]) / 2)


def test_the_seed_spread_is_pooled_over_every_pair_of_seeds():
    a, b = photo_curve("a", "grm", 1.0, 0.0), photo_curve("b", "seed", 1.0, 0.3)
    c, d = photo_curve("c", "x", 1.0, 1.0), photo_curve("d", "x", 1.0, 0.2)
    d1, d2 = bd_rate(a, b)[0], bd_rate(c, d)[0]
    assert seed_sigma([[a, b]]) == pytest.approx((abs(d1) / math.sqrt(2), 1))
    assert seed_sigma([[a, b], [c, d]]) == pytest.approx((math.sqrt((d1**2 + d2**2) / 4), 2))
    assert seed_sigma([[a], [c]]) is None
    # three seeds of one model: two degrees of freedom, weighted as such against a pair
    e = photo_curve("e", "seed", 1.0, -0.4)
    pairs = [bd_rate(x, y)[0] ** 2 for x, y in ((a, b), (a, e), (b, e))]
    three = np.mean(pairs) / 2
    assert seed_sigma([[a, b, e], [c, d]]) == pytest.approx(
        (math.sqrt((2 * three + d2**2 / 2) / 3), 3)
    )


def test_the_report_compares_seed_means_with_intervals_widened_by_the_spread():
    # grm saves 1.5 dB on the repeated photos only; each model has a second seed 0.3 dB
    # away. The means are compared, the training noise σ·√(1/2 + 1/2) = σ joining the
    # photos' interval in quadrature at Student's t for 2 degrees of freedom (4.30).
    shift = np.array([0.0] * 8 + [1.5] * 4)
    noise = np.random.default_rng(3).normal(0, 0.1, 12)
    curves = [
        photo_curve("grm", "grm", 1.0, shift),
        photo_curve("grm-seed1", "seed", 1.0, shift - 0.3),
        photo_curve("grm-noref", "ablation", 1.0, noise),
        photo_curve("grm-noref-seed1", "ablation", 1.0, noise + 0.3),
        photo_curve("mbt2018", "peer", 1.0, noise - 0.2),
    ]
    groups = [["grm", "grm-seed1"], ["grm-noref", "grm-noref-seed1"], ["mbt2018"]]
    text, metrics = markdown(curves, "none", "grm", 12, kinds=KINDS, groups=groups)
    by = {c.name: c for c in curves}
    sigma, dof = seed_sigma(
        [[by["grm"], by["grm-seed1"]], [by["grm-noref"], by["grm-noref-seed1"]]]
    )
    assert metrics["seed_sigma.psnr.all"] == pytest.approx(sigma) and dof == 2
    assert metrics["seed_dof.psnr.all"] == 2
    t2 = 4.3027
    me = mean_curve([by["grm"], by["grm-seed1"]], "grm", "GRM", "grm")
    other = mean_curve([by["grm-noref"], by["grm-noref-seed1"]], "grm-noref", "N", "ablation")
    lo, hi = bd_rate_intervals([("grm", "grm-noref")], {"grm": me, "grm-noref": other})[
        ("grm", "grm-noref", "psnr")
    ]
    key = "bd_rate_seed_mean.psnr.all.grm_vs_grm-noref"
    v = metrics[key]
    assert v == pytest.approx(bd_rate(other, me)[0])
    assert metrics[key + ".lo"] == pytest.approx(v - math.hypot(v - lo, t2 * sigma), 1e-4)
    assert metrics[key + ".hi"] == pytest.approx(v + math.hypot(hi - v, t2 * sigma), 1e-4)
    # against a model of one seed: σ·√(1/2 + 1)
    me_alone = bd_rate_intervals([("grm", "mbt2018")], {"grm": me, "mbt2018": by["mbt2018"]})
    lo1 = me_alone[("grm", "mbt2018", "psnr")][0]
    v = metrics["bd_rate_seed_mean.psnr.all.grm_vs_mbt2018"]
    assert metrics["bd_rate_seed_mean.psnr.all.grm_vs_mbt2018.lo"] == pytest.approx(
        v - math.hypot(v - lo1, t2 * sigma * math.sqrt(1.5)), 1e-4
    )
    verdict = text.split("## Verdict")[1].split("## BD-rate")[0]
    assert verdict.index("### Averaged over seeds") < verdict.index("### One training each")
    assert "(GRM-SEED1: overall " in verdict  # each twin's distance, named
    line = next(x for x in verdict.splitlines() if x.startswith("- GRM (2 seeds) vs GRM-NOREF"))
    assert "(2 seeds)" in line and "repeated: " in line
    assert "**beyond noise, fewer bits**" in line.split("repeated: ")[1]
    assert line.split("clean: ")[1].split(";")[0].endswith("within noise")
    # no model with two seeds: no section
    text, metrics = markdown(curves[2:3], "none", "grm-noref", 12, kinds=KINDS, groups=[])
    assert "Averaged over seeds" not in text and not any(
        k.startswith("seed_sigma") for k in metrics
    )


def test_seeds_for_a_goal_follow_the_measured_noise():
    from grm.pipeline.seeds import Spread, seeds_for

    # σ 2.5%, photos ±0.9%, three models: the smallest k with
    # √(0.9² + (t(3(k−1))·2.5·√(2/k))²) ≤ 3, checked by hand: k = 7 (±2.95), k = 6 (±3.21).
    assert seeds_for(3.0, 0.9, Spread(2.5, 9), 3) == 7
    assert seeds_for(3.0, 0.9, Spread(1.0, 9), 3) == 3  # two: t(3 dof) = 3.18 alone
    assert seeds_for(3.0, 3.5, Spread(1.0, 9), 3) is None  # the photos alone exceed it
    curves = [
        photo_curve("grm", "grm", 1.0, 0.0),
        photo_curve("grm-seed1", "seed", 1.0, -0.3),
        photo_curve("grm-noref", "ablation", 1.0, 0.1),
        photo_curve("grm-noref-seed1", "ablation", 1.0, 0.3),
    ]
    groups = [["grm", "grm-seed1"], ["grm-noref", "grm-noref-seed1"]]
    text, metrics = markdown(curves, "none", "grm", 12, kinds=KINDS, groups=groups, goal=3.0)
    line = next(x for x in text.splitlines() if x.startswith("Goal ±3% overall"))
    k = metrics["seeds_for_goal.psnr.all.grm_vs_grm-noref"]
    assert k > 2 and f"about {k} seeds of each model for ±3%" in line
    text, _ = markdown(curves, "none", "grm", 12, kinds=KINDS, groups=groups)
    assert "Goal" not in text


def test_models_trained_with_the_same_seeds_are_compared_paired_by_seed():
    # Each seed moves grm and grm-noref alike (a shared offset), the reference saves 0.2 dB:
    # paired by seed, the noise is the spread of the per-seed BD-rates, not of the seeds.
    from grm.pipeline.intervals import t_quantile
    from grm.pipeline.seeds import matched_seeds

    offsets = [0.0, -0.4, 0.3]
    curves, seeds, groups = [], {}, [[], []]
    for k, off in enumerate(offsets):
        for g, (model, kind, gain) in enumerate(
            (("grm", "grm", 0.2), ("grm-noref", "ablation", 0.0))
        ):
            name = model if k == 0 else f"{model}-seed{k}"
            jitter = np.random.default_rng(10 + 2 * k + g).normal(0, 0.02, 12)
            curves.append(photo_curve(name, kind if k == 0 else "seed", 1.0, gain + off + jitter))
            seeds[name] = k
            groups[g].append(name)
    by = {c.name: c for c in curves}
    mine, other = [[by[n] for n in g] for g in groups]
    assert matched_seeds(mine, other, seeds) == list(zip(mine, other))
    assert matched_seeds(mine, other[:2], seeds) is None  # not the same seeds: unpaired
    assert matched_seeds(mine, other, {}) is None
    text, paired = markdown(curves, "none", "grm", 12, kinds=KINDS, groups=groups, seeds=seeds)
    _, unpaired = markdown(curves, "none", "grm", 12, kinds=KINDS, groups=groups)
    key = "bd_rate_seed_mean.psnr.all.grm_vs_grm-noref"
    per_seed = [bd_rate(b, a)[0] for a, b in zip(mine, other)]
    s = float(np.std(per_seed, ddof=1))
    assert paired["seed_paired_sd.psnr.all.grm_vs_grm-noref"] == pytest.approx(s)
    assert "seed_paired_sd.psnr.all.grm_vs_grm-noref" not in unpaired
    me = mean_curve(mine, "grm", "GRM", "grm")
    them = mean_curve(other, "grm-noref", "N", "ablation")
    lo, hi = bd_rate_intervals([("grm", "grm-noref")], {"grm": me, "grm-noref": them})[
        ("grm", "grm-noref", "psnr")
    ]
    v, by_seed = paired[key], t_quantile(2) * s / math.sqrt(3)
    assert paired[key + ".lo"] == pytest.approx(v - math.hypot(v - lo, by_seed), 1e-4)
    assert paired[key + ".hi"] - paired[key + ".lo"] < 0.5 * (
        unpaired[key + ".hi"] - unpaired[key + ".lo"]
    )
    assert paired[key + ".hi"] < 0 < unpaired[key + ".hi"]  # the saving shows only paired
    assert "(paired by seed, s = " in text
