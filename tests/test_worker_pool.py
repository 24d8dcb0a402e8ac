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


def _dies_on_3():
    import os

    def one(item):
        if item == 3:
            os._exit(9)  # as the kernel's out-of-memory killer would end it
        return item

    return one


def test_a_killed_worker_ends_the_work_with_one_line():
    from grm.errors import GrmError
    from grm.worker_pool import mapped

    with pytest.raises(GrmError, match="was killed"):
        with mapped(_dies_on_3, (), range(8), 2) as results:
            list(results)
