"""Classic codec adapters: each writes a real file that decodes to what it measured."""

import pytest

from grm.pipeline.classic import CODECS
from grm.pipeline.classic_eval import evaluate_classic
from grm.pipeline.metrics import psnr


@pytest.mark.parametrize("name", sorted(CODECS))
def test_adapter_round_trips_and_counts_the_file_it_wrote(name, photo, tmp_path):
    rgb = photo[100:229, 150:311]  # odd sides: VVC's 4:2:0 pads and crops back
    ladder = [40, 30] if name.startswith("vvc") else [20, 60]  # VVC: a QP, lower is better
    points = evaluate_classic(name, ladder, [("crop", rgb)], tmp_path)
    for point in points:
        row = point["images"][0]
        path = tmp_path / f"crop-q{point['quality']}.bin"
        assert row["bytes"] == path.stat().st_size > 0
        out = CODECS[name].decode(path.read_bytes(), rgb.shape[:2])
        assert out.shape == rgb.shape and psnr(rgb, out) == pytest.approx(row["psnr"])
        assert row["psnr"] > 20
    assert points[1]["mean"]["bpp"] > points[0]["mean"]["bpp"]  # higher quality, more bits
