"""The report's 95% intervals: a paired bootstrap over the evaluation photos."""

import math

import numpy as np
import pytest

from grm.pipeline.intervals import (
    bd_rate_intervals,
    delta_intervals,
    excludes_zero,
    restricted,
)
from grm.pipeline.report import Curve, markdown
from grm.pipeline.seeds import seed_sigma

RATES = {"q1": 0.1, "q2": 0.2, "q3": 0.4, "q4": 0.8}


def photo_curve(name, kind, bpp_scale, psnr_shift, photos=12, seed=0):
    """Per photo: bpp = rate × photo's difficulty × bpp_scale, PSNR = 36 + 4·log2(rate) +
    the photo's offset + psnr_shift[i] (a number, or one value per photo)."""
    rng = np.random.default_rng(seed)
    hard, offset = rng.uniform(0.7, 1.6, photos), rng.normal(0, 2, photos)
    shift = np.broadcast_to(np.asarray(psnr_shift, dtype=float), (photos,))
    points = []
    for rp, rate in RATES.items():
        rows = {
            f"p{i}": {
                "bpp": rate * hard[i] * bpp_scale,
                "psnr": 36 + 4 * np.log2(rate) + offset[i] + shift[i],
                "ms_ssim": 0.9 + 0.02 * np.log2(rate / 0.1) + 0.001 * shift[i],
            }
            for i in range(photos)
        }
        means = {
            m: float(np.mean([r[m] for r in rows.values()])) for m in ("bpp", "psnr", "ms_ssim")
        }
        points.append({"rate_point": rp, **means, "photos": rows})
    return Curve(name, name.upper(), kind, points)


def test_a_consistent_saving_has_a_tight_interval_around_it():
    anchor = photo_curve("a", "classic", 1.0, 0.0)
    cheaper = photo_curve("b", "grm", 0.9, 0.0)  # 10% fewer bits on every photo
    ci = bd_rate_intervals([("b", "a")], {"a": anchor, "b": cheaper}, resamples=200)
    lo, hi = ci[("b", "a", "psnr")]
    assert -10.5 < lo <= hi < -9.5


def test_a_difference_that_changes_sign_across_photos_is_within_noise():
    rng = np.random.default_rng(1)
    anchor = photo_curve("a", "classic", 1.0, 0.0)
    mixed = photo_curve("b", "grm", 1.0, rng.normal(0, 1.0, 12) - 0.0)  # mean ≈ 0, spread 1 dB
    ci = bd_rate_intervals([("b", "a")], {"a": anchor, "b": mixed}, resamples=300)
    assert excludes_zero(ci[("b", "a", "psnr")]) is False
    better = photo_curve("c", "grm", 1.0, 1.5)  # 1.5 dB better on every photo
    ci = bd_rate_intervals([("c", "a")], {"a": anchor, "c": better}, resamples=300)
    assert excludes_zero(ci[("c", "a", "psnr")]) is True


def test_equal_lambda_intervals_are_paired_and_widened_by_the_seed_spread():
    me = photo_curve("grm", "grm", 1.0, 0.3)
    other = photo_curve("peer", "peer", 1.05, 0.0)
    ci = delta_intervals(me, other, {}, resamples=200)
    assert set(ci) == set(RATES)
    lo, hi = ci["q2"]["psnr"]  # the same 0.3 dB on every photo: no spread at all
    assert abs(lo - 0.3) < 1e-9 and abs(hi - 0.3) < 1e-9
    lo, hi = ci["q2"]["bpp"]
    assert abs(lo - 100 * (1 / 1.05 - 1)) < 1e-6
    # One twin 0.1 dB away: the training noise joins at t(1 dof) = 12.7, in quadrature.
    wide = delta_intervals(me, other, {"q2": {"bpp": 2.0, "psnr": 0.1, "dof": 1}}, resamples=200)
    assert wide["q2"]["psnr"] == pytest.approx((0.3 - 1.2706 * 1, 0.3 + 1.2706 * 1), abs=1e-3)
    lo, hi = wide["q2"]["bpp"]
    assert hi - lo == pytest.approx(2 * 12.706 * 2.0, abs=0.01)  # the photos add nothing here
    five = delta_intervals(me, other, {"q2": {"bpp": 2.0, "psnr": 0.1, "dof": 5}}, resamples=200)
    assert five["q2"]["psnr"][0] == pytest.approx(0.3 - 2.5706 * 0.1, abs=1e-4)


def test_the_report_prints_the_intervals_and_reads_noise_off_them():
    curves = [
        photo_curve("grm", "grm", 1.0, 0.0),
        photo_curve("mbt2018", "peer", 1.0, np.random.default_rng(2).normal(0, 0.5, 12)),
        photo_curve("jpeg", "classic", 1.6, -1.0),
    ]
    text, metrics = markdown(curves, "jpeg", "grm", 12)
    assert "bootstrap over the 12 evaluation photos" in text
    assert "| GRM | JPEG | " in text and "% [" in text
    bd, lo, hi = (
        metrics[f"bd_rate{k}.psnr.grm_vs_jpeg{e}"]
        for k, e in (("", ""), ("_ci", ".lo"), ("_ci", ".hi"))
    )
    assert lo - 1e-6 <= bd <= hi + 1e-6
    assert metrics["bd_rate_ci.psnr.grm_vs_jpeg.hi"] < 0  # JPEG costs 60% more on every photo
    assert "**within noise** at every rate point" in text  # grm vs its noisy twin


def test_per_kind_intervals_show_where_a_difference_holds():
    # The subject saves bits only on the 'repeated' photos (p8..p11: +1.5 dB there), nothing
    # on the rest: the per-kind table must say so, each kind on its own photos.
    shift = np.array([0.0] * 8 + [1.5] * 4)
    curves = [
        photo_curve("grm", "grm", 1.0, shift),
        photo_curve("grm-noref", "ablation", 1.0, np.random.default_rng(3).normal(0, 0.1, 12)),
        photo_curve("jpeg", "classic", 1.6, -1.0),
    ]
    kinds = {
        f"p{i}": ("clean" if i < 4 else "textured" if i < 8 else "repeated") for i in range(12)
    }
    text, metrics = markdown(curves, "jpeg", "grm", 12, kinds=kinds)
    assert (
        "## By kind of photo" in text
        and "| clean (4) | textured (4) | repeated (4) | all (12) |" in text
    )
    key = "bd_rate_kind.psnr.{}.grm_vs_grm-noref"
    assert metrics[key.format("repeated") + ".hi"] < 0  # beyond noise on repeated structure
    assert metrics[key.format("clean") + ".lo"] < 0 < metrics[key.format("clean") + ".hi"]
    assert metrics[key.format("all")] == pytest.approx(metrics["bd_rate.psnr.grm_vs_grm-noref"])
    # One kind only (a user's own photos): no per-kind section.
    text, _ = markdown(curves, "jpeg", "grm", 12, kinds={f"p{i}": "all" for i in range(12)})
    assert "By kind" not in text


def test_a_seed_twin_widens_the_bd_rate_intervals_and_the_verdict_reads_them():
    # grm saves ~1.5 dB on the repeated photos only; its seed twin lies 0.05 dB away on
    # every photo. With the twin, every interval of grm against another learned model
    # holds |BD-rate grm vs twin| on that kind at t(1 dof), in quadrature with the photos',
    # and the verdict (first in the report) says so.
    shift = np.array([0.0] * 8 + [1.5] * 4)
    noise = np.random.default_rng(3).normal(0, 0.1, 12)
    curves = [
        photo_curve("grm", "grm", 1.0, shift),
        photo_curve("grm-noref", "ablation", 1.0, noise),
        photo_curve("jpeg", "classic", 1.6, -1.0),
    ]
    kinds = {
        f"p{i}": ("clean" if i < 4 else "textured" if i < 8 else "repeated") for i in range(12)
    }
    alone, before = markdown(curves, "jpeg", "grm", 12, kinds=kinds)
    twin = photo_curve("grm-seed1", "seed", 1.0, shift - 0.05)
    text, after = markdown([*curves, twin], "jpeg", "grm", 12, kinds=kinds)
    t1 = 12.706  # Student's t, 95%, one degree of freedom
    photos = {"all": list(kinds)} | {
        k: [p for p, kk in kinds.items() if kk == k] for k in ("clean", "repeated")
    }
    for kind, chosen in photos.items():
        key = f"bd_rate_kind.psnr.{kind}.grm_vs_grm-noref"
        sigma, dof = seed_sigma([[restricted(curves[0], chosen), restricted(twin, chosen)]])
        by, v = t1 * sigma * math.sqrt(2), after[key]
        assert dof == 1 and by > 5.0
        assert by == pytest.approx(t1 * abs(after[key.replace("noref", "seed1")]), 0.02)
        assert after[key + ".lo"] == pytest.approx(
            v - math.hypot(v - before[key + ".lo"], by), 1e-4
        )
        assert after[key + ".hi"] == pytest.approx(
            v + math.hypot(before[key + ".hi"] - v, by), 1e-4
        )
        if kind == "all":
            assert after["bd_rate_ci.psnr.grm_vs_grm-noref.lo"] == pytest.approx(
                after[key + ".lo"], 1e-9
            )
    assert text.index("## Verdict") < text.index("## BD-rate") and "## Verdict" in alone
    verdict = text.split("## Verdict")[1].split("##")[0]
    assert "seed noise is not in this run" in alone and "seed twins lie at" in verdict
    line = next(x for x in verdict.splitlines() if x.startswith("- vs GRM-NOREF"))
    assert "**beyond noise, fewer bits**" in line.split("repeated: ")[1]
    assert line.split("clean: ")[1].split(";")[0].endswith("within noise")


def test_the_report_shows_per_photo_how_the_reference_was_used():
    grm = photo_curve("grm", "grm", 0.9, 0.0, photos=4)
    for p in grm.points:
        for i, row in enumerate(p["photos"].values()):
            row.update(ref_used=0.1 * i, weight_stage2=0.2)
    noref = photo_curve("grm-noref", "ablation", 1.0, 0.0, photos=4)
    kinds = {"p0": "repeated", "p1": "clean", "p2": "clean", "p3": "textured"}
    text, metrics = markdown([grm, noref], "jpeg", "grm", 4, kinds=kinds)
    assert "## How GRM uses its global reference" in text
    rows = [line for line in text.splitlines() if line.startswith("| clean | p")]
    assert rows == [
        "| clean | p1 | 10.0% | 0.200 | -10.0% | +0.00 |",
        "| clean | p2 | 20.0% | 0.200 | -10.0% | +0.00 |",
    ]
    assert metrics["reference_used.clean"] == pytest.approx(0.15)
    assert metrics["reference_used.repeated"] == pytest.approx(0.0)
    assert "Reference used, mean by kind: clean 15.0%, textured 30.0%, repeated 0.0%." in text
    # Minnen 2018 has no reference: no usage rows, no section.
    text, _ = markdown([noref], "jpeg", "grm-noref", 4, kinds=kinds)
    assert "global reference" not in text
