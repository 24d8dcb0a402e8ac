import numpy as np
import pytest

from grm.pipeline.report import Curve, bd_rate, equal_lambda_table, markdown


def _curve(name, kind, pts):
    return Curve(
        name,
        name.upper(),
        kind,
        [{"rate_point": rp, "bpp": b, "psnr": q, "ms_ssim": m} for rp, b, q, m in pts],
    )


def test_equal_lambda_deltas_are_subject_minus_other():
    grm = _curve("grm", "grm", [("q1", 0.22, 30.0, 0.95), ("q2", 0.5, 33.0, 0.97)])
    gdn = _curve(
        "gdn",
        "ablation",
        [("q1", 0.20, 29.5, 0.94), ("q2", 0.5, 33.5, 0.98), ("q3", 1.0, 36, 0.99)],
    )
    rows = equal_lambda_table(grm, [gdn])
    assert rows[2] == "| GDN | q1 | +10.0% | – | +0.50 | – | +0.0100 | – |"
    assert rows[3] == "| GDN | q2 | +0.0% | – | -0.50 | – | -0.0100 | – |"
    assert len(rows) == 4, "a rate point the subject lacks is skipped"


def test_report_has_equal_lambda_section_even_when_bd_rate_is_undefined():
    grm = _curve("grm", "grm", [("q1", 0.2, 30.0, 0.95), ("q2", 0.4, 29.0, 0.96)])  # not monotonic
    peer = _curve("mbt", "peer", [("q1", 0.25, 29.0, 0.94), ("q2", 0.45, 30.0, 0.96)])
    text, _ = markdown([grm, peer], anchor="none", subject="grm", images=1)
    assert "fewer than 2 points on an operational RD curve" in text
    assert "- GRM (PSNR): q2" in text  # the dropped point is named
    assert (
        "## GRM at equal λ" in text
        and "| MBT | q1 | -20.0% | – | +1.00 | – | +0.0100 | – |" in text
    )


def test_differences_inside_the_seed_spread_are_marked_noise():
    grm = _curve("grm", "grm", [("q1", 0.20, 30.0, 0.95), ("q2", 0.50, 33.0, 0.97)])
    # One twin: its distance is the noise, at Student's t for one degree of freedom (12.7).
    seed1 = _curve("grm-seed1", "seed", [("q1", 0.21, 29.8, 0.95), ("q2", 0.501, 33.01, 0.97)])
    noref = _curve("noref", "ablation", [("q1", 0.205, 29.9, 0.95), ("q2", 0.60, 32.0, 0.96)])
    text, metrics = markdown([grm, seed1, noref], anchor="none", subject="grm", images=1)
    assert "| NOREF | q1 | -2.4% | – | +0.10 | – | +0.0000 | within noise |" in text
    assert "| NOREF | q2 | -16.7% | – | +1.00 | – | +0.0100 | beyond noise |" in text
    assert (
        "- vs NOREF: GRM spends fewer bits (-9.6%) at +0.55 dB PSNR, mean over 2 rate point(s); "
        "beyond noise at 1 of 2 rate point(s)." in text
    )
    assert abs(metrics["seed_spread.q1.bpp_pct"] - 100 * (1 - 0.20 / 0.21)) < 1e-9
    text, _ = markdown([grm, noref], anchor="none", subject="grm", images=1)
    assert "Seed noise not measured" in text and "; noise not measured." in text


def test_comparison_crop_is_where_the_codecs_differ_and_every_codec_has_a_panel(photo, tmp_path):
    from grm.pipeline.compare import Panel, most_different_crop, nearest, render

    original = photo[:256, :256].copy()
    blurred = original.copy()
    blurred[160:224, 32:96] = (
        blurred[160:224, 32:96].mean((0, 1)).astype(np.uint8)
    )  # one codec fails here
    top, left, side = most_different_crop(original, [original, blurred], 64)
    assert side == 64 and abs(top - 160) <= 8 and abs(left - 32) <= 8
    assert nearest([{"bpp": 0.1}, {"bpp": 0.3}, {"bpp": 1.0}], 0.25)["bpp"] == 0.3
    panels = [
        Panel("codec A", 0.2, original),
        Panel("codec B", 0.21, blurred),
        Panel("codec C", 0.3, original),
    ]
    drawn = render(original, panels, tmp_path / "fig.png", "test", crop_size=64)
    assert drawn == ["original", "codec A", "codec B", "codec C"]
    assert (tmp_path / "fig.png").read_bytes()[:4] == b"\x89PNG"


def test_training_budget_names_the_base_and_each_rate_points_own_steps():
    from grm.pipeline.report import training_budget

    line = training_budget(
        {
            "train": {"steps": 230, "batch_size": 8, "crop": 128, "model": "compact"},
            "base": {"steps": 2500, "lmbda": 0.013},
            "rates": {"q1": {"lmbda": 0.0035}, "q3": {"lmbda": 0.0483, "steps": 480}},
        }
    )
    assert "a base of 2,500 steps of batch 8 × 128² crops at λ = 0.013" in line
    assert "rate point on batch 8 × 128² crops (q1 230, q3 480 steps)" in line
    assert "`compact`" in line
    # The validation profile's bases train on 128² crops, its fine-tunes on 256².
    line = training_budget(
        {
            "train": {"steps": 230, "batch_size": 8, "crop": 256, "model": "compact"},
            "base": {"steps": 5000, "lmbda": 0.013, "crop": 128},
            "rates": {"q1": {"lmbda": 0.0005}},
        }
    )
    assert "a base of 5,000 steps of batch 8 × 128² crops" in line
    assert "rate point on batch 8 × 256² crops (q1 230 steps)" in line


def curve(name, rates, psnrs):
    return Curve(
        name,
        name,
        "grm",
        [{"bpp": r, "psnr": p, "ms_ssim": 1 - 10 ** (-p / 20)} for r, p in zip(rates, psnrs)],
    )


def test_bd_rate_of_a_curve_against_itself_and_a_costlier_copy():
    rates, quality = [0.1, 0.2, 0.4, 0.8], [27.0, 30.0, 33.0, 36.0]
    anchor = curve("a", rates, quality)
    assert bd_rate(anchor, curve("b", rates, quality))[0] == pytest.approx(0.0, abs=1e-9)
    value, _ = bd_rate(anchor, curve("c", [r * 1.1 for r in rates], quality))
    assert value == pytest.approx(10.0, abs=0.01)
    value, _ = bd_rate(anchor, curve("c", [r * 1.1 for r in rates], quality), "ms_ssim")
    assert value == pytest.approx(10.0, abs=0.01)


def test_bd_rate_says_why_when_curves_do_not_overlap():
    value, why = bd_rate(
        curve("a", [0.1, 0.2, 0.4], [20, 22, 24]), curve("b", [1, 2, 4], [40, 42, 44])
    )
    assert value is None and "overlap" in why


def test_bd_rate_uses_the_operational_curve():
    rates, quality = [0.1, 0.2, 0.4, 0.8], [27.0, 30.0, 33.0, 36.0]
    anchor = curve("a", rates, quality)
    # A repeated point (a codec's floor) and a dominated one change nothing.
    noisy = curve("b", [0.1, 0.1, 0.2, 0.3, 0.4, 0.8], [27.0, 27.0, 30.0, 29.5, 33.0, 36.0])
    assert noisy.operational("psnr")[2] == ["0.100 bpp", "0.300 bpp"]
    assert bd_rate(anchor, noisy)[0] == pytest.approx(0.0, abs=1e-9)
    assert bd_rate(anchor, curve("c", [0.1, 0.2], [30.0, 29.0]))[0] is None


def test_curve_kinds_of_the_subject_its_seed_twin_peers_and_ablations():
    from grm.pipeline.report import curve_kind

    grm = {"arch": "grm"}
    assert curve_kind("grm", grm, "grm", grm) == "grm"
    assert curve_kind("grm-seed1", {"arch": "grm", "seed": 1}, "grm", grm) == "seed"
    assert (
        curve_kind("grm-s0", {"arch": "grm", "seed": 0}, "grm", {"arch": "grm", "seed": 0})
        == "ablation"
    )
    assert curve_kind("mbt2018", {"arch": "mbt2018"}, "grm", grm) == "peer"
    assert (
        curve_kind("grm-noref", {"arch": "grm", "model": {"reference": False}}, "grm", grm)
        == "ablation"
    )
    # another seed of a different model is no twin of the subject
    assert curve_kind("x", {"arch": "grm", "seed": 1, "model": {"N": 8}}, "grm", grm) == "ablation"
