"""Trainings side by side: how many at once, the cores shared out, the last one told it is
alone, and a failure that stops the rest."""

import sys
import time

import pytest

from grm.errors import GrmError
from grm.pipeline import side_by_side


def test_jobs_follow_the_cores_and_stay_one_under_a_launcher(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(side_by_side, "cores", lambda: 2)
    assert side_by_side.jobs_for("auto", 3) == 2
    assert side_by_side.jobs_for(1, 3) == 1
    assert side_by_side.jobs_for(8, 3) == 2  # never more than the cores
    assert side_by_side.jobs_for("auto", 1) == 1
    monkeypatch.setenv("WORLD_SIZE", "2")  # accelerate launch / torchrun: one after another
    assert side_by_side.jobs_for("auto", 3) == 1
    for bad in (0, "two", True, 1.5):
        with pytest.raises(ValueError, match="base.jobs"):
            side_by_side.jobs_for(bad, 3)


def test_a_gpu_is_shared_only_when_a_number_is_asked_for(monkeypatch):
    import torch

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(side_by_side, "cores", lambda: 16)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert side_by_side.jobs_for("auto", 8) == 1
    assert side_by_side.jobs_for(6, 8, "train.jobs") == 6
    assert side_by_side.jobs_for(6, 3, "train.jobs") == 3


CHILD = """
import os, sys, time
from pathlib import Path
from grm.pipeline import side_by_side
out = Path(sys.argv[1])
out.write_text(os.environ["OMP_NUM_THREADS"] + " " + os.environ[side_by_side.PROGRESS_ROW])
if sys.argv[2] == "fail":
    sys.exit(3)
if sys.argv[2] == "wait":
    import torch
    with side_by_side.every_core_when_alone():
        for _ in range(300):  # until the last-one-running signal has raised the threads
            if torch.get_num_threads() == side_by_side.cores():
                out.write_text(out.read_text() + " alone")
                break
            time.sleep(0.05)
    time.sleep(7)  # past the trainings: a resent signal must not kill it while it ends
"""


def test_children_share_the_cores_and_the_last_one_takes_them_all(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cmd = [sys.executable, "-c", CHILD]
    side_by_side.run_all(
        {
            "quick": cmd + [str(tmp_path / "a"), "quick"],
            "slow": cmd + [str(tmp_path / "b"), "wait"],
        },
        jobs=2,
    )
    threads = str(max(1, side_by_side.cores() // 2))
    assert (tmp_path / "a").read_text() == f"{threads} 0"
    assert (tmp_path / "b").read_text() == f"{threads} 1 alone"


def test_a_failure_stops_the_others_and_names_the_one_that_failed(tmp_path):
    cmd = [sys.executable, "-c", CHILD]
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    t = time.monotonic()
    with pytest.raises(GrmError, match=r"broken failed \(exit status 3\)"):
        side_by_side.run_all(
            {"sleeper": sleeper, "broken": cmd + [str(tmp_path / "c"), "fail"]}, jobs=2
        )
    assert time.monotonic() - t < 30  # the sleeper was stopped, not waited for
