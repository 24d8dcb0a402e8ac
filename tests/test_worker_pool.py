"""A model evaluated by worker processes gives the rows one process gives, in the same order."""

import pytest

from grm.pipeline.evaluation import evaluate_model


def crops(photo, n: int, side: int = 64):
    return [
        (f"c{i}", photo[20 * i : 20 * i + side, 30 * i : 30 * i + side].copy()) for i in range(n)
    ]


def test_model_evaluation_in_two_workers_matches_one_process(trained, photo, tmp_path):
    images = crops(photo, 8)
    one = evaluate_model(trained, images, tmp_path / "one", workers=1)
    two = evaluate_model(trained, images, tmp_path / "two", workers=2)
    assert [r["image"] for r in two] == [k for k, _ in images]
    for a, b in zip(one, two):
        assert b["bit_exact"] and b["bytes"] == pytest.approx(a["bytes"], rel=0.02)
        assert b["psnr"] == pytest.approx(a["psnr"], abs=0.05)
        assert (tmp_path / "two" / f"{b['image']}.png").is_file()
