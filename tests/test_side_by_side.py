"""Trainings side by side: how many at once, the cores shared out for good, and a failure
that stops the rest."""

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
began = time.time()
if sys.argv[2] == "fail":
    sys.exit(3)
if sys.argv[2].startswith("until:"):  # another child has written its file (or 30 s passed)
    other = Path(sys.argv[2][6:])
    for _ in range(300):
        if other.exists():
            break
        time.sleep(0.1)
else:
    time.sleep(float(sys.argv[2]))
out.write_text(" ".join([os.environ["OMP_NUM_THREADS"], os.environ[side_by_side.PROGRESS_ROW],
                         str(began), str(time.time())]))
"""


def test_each_child_keeps_its_share_and_one_left_over_runs_on_every_core(tmp_path, monkeypatch):
    """A training's floats round by its thread count, so the count is fixed when it starts,
    by the list alone: never raised when the others happen to finish (another model each
    run). Three on two jobs: two side by side, then the third on every core, after both."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cmd = [sys.executable, "-c", CHILD]
    side_by_side.run_all(
        {
            name: cmd + [str(tmp_path / name), wait]
            for name, wait in (("long", "1.5"), ("short", "0.2"), ("last", "0"))
        },
        jobs=2,
    )
    runs = {n: (tmp_path / n).read_text().split() for n in ("long", "short", "last")}
    share = str(max(1, side_by_side.cores() // 2))
    assert runs["long"][:2] == [share, "0"] and runs["short"][:2] == [share, "1"]
    assert runs["last"][:2] == [str(side_by_side.cores()), "2"]
    assert float(runs["last"][2]) >= float(runs["long"][3])  # it waited for the long one

    # An even count leaves none over: each keeps its share, and the next starts as soon as
    # a place is free (the long one ends only once the third has written its file).
    even = {"long": f"until:{tmp_path / 'third'}", "short": "0", "third": "0", "fourth": "0"}
    side_by_side.run_all(
        {name: cmd + [str(tmp_path / name), wait] for name, wait in even.items()}, jobs=2
    )
    third = (tmp_path / "third").read_text().split()
    assert third[0] == share
    assert float(third[3]) < float((tmp_path / "long").read_text().split()[3])


def test_a_failure_stops_the_others_and_names_the_one_that_failed(tmp_path):
    cmd = [sys.executable, "-c", CHILD]
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    t = time.monotonic()
    with pytest.raises(GrmError, match=r"broken failed \(exit status 3\)"):
        side_by_side.run_all(
            {"sleeper": sleeper, "broken": cmd + [str(tmp_path / "c"), "fail"]}, jobs=2
        )
    assert time.monotonic() - t < 30  # the sleeper was stopped, not waited for
