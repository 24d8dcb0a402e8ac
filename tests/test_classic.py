"""Classic codec adapters and the BD-rate helper."""

import numpy as np
import pytest

from grm.pipeline.classic import CODECS
from grm.pipeline.classic_eval import evaluate_classic
from grm.pipeline.metrics import psnr
from grm.pipeline.report import Curve, bd_rate


@pytest.mark.parametrize("name", sorted(CODECS))
def test_adapter_round_trips_and_counts_the_file_it_wrote(name, photo, tmp_path):
    rgb = photo[100:229, 150:311]           # odd sides: VVC's 4:2:0 pads and crops back
    ladder = [40, 30] if name == "vvc" else [20, 60]     # VVC's ladder is a QP: lower is better
    points = evaluate_classic(name, ladder, [("crop", rgb)], tmp_path)
    for point in points:
        row = point["images"][0]
        path = tmp_path / f"crop-q{point['quality']}.bin"
        assert row["bytes"] == path.stat().st_size > 0
        out = CODECS[name].decode(path.read_bytes(), rgb.shape[:2])
        assert out.shape == rgb.shape and psnr(rgb, out) == pytest.approx(row["psnr"])
        assert row["psnr"] > 20
    assert points[1]["mean"]["bpp"] > points[0]["mean"]["bpp"]     # higher quality, more bits


def curve(name, rates, psnrs):
    return Curve(name, name, "grm", [{"bpp": r, "psnr": p, "ms_ssim": 1 - 10 ** (-p / 20)} for r, p in zip(rates, psnrs)])


def test_bd_rate_of_a_curve_against_itself_and_a_costlier_copy():
    rates, quality = [0.1, 0.2, 0.4, 0.8], [27.0, 30.0, 33.0, 36.0]
    anchor = curve("a", rates, quality)
    assert bd_rate(anchor, curve("b", rates, quality))[0] == pytest.approx(0.0, abs=1e-9)
    value, _ = bd_rate(anchor, curve("c", [r * 1.1 for r in rates], quality))
    assert value == pytest.approx(10.0, abs=0.01)
    value, _ = bd_rate(anchor, curve("c", [r * 1.1 for r in rates], quality), "ms_ssim")
    assert value == pytest.approx(10.0, abs=0.01)


def test_bd_rate_says_why_when_curves_do_not_overlap():
    value, why = bd_rate(curve("a", [0.1, 0.2, 0.4], [20, 22, 24]), curve("b", [1, 2, 4], [40, 42, 44]))
    assert value is None and "overlap" in why


def test_bd_rate_uses_the_operational_curve():
    rates, quality = [0.1, 0.2, 0.4, 0.8], [27.0, 30.0, 33.0, 36.0]
    anchor = curve("a", rates, quality)
    # A repeated point (a codec's floor) and a dominated one change nothing.
    noisy = curve("b", [0.1, 0.1, 0.2, 0.3, 0.4, 0.8], [27.0, 27.0, 30.0, 29.5, 33.0, 36.0])
    assert noisy.operational("psnr")[2] == ["0.100 bpp", "0.300 bpp"]
    assert bd_rate(anchor, noisy)[0] == pytest.approx(0.0, abs=1e-9)
    assert bd_rate(anchor, curve("c", [0.1, 0.2], [30.0, 29.0]))[0] is None
