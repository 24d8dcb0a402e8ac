"""Trainings side by side: how many at once, each one's share of the cores whatever else
trains, and a failure that stops the rest."""

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
    assert [side_by_side.share(j) for j in (1, 2)] == [2, 1]
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


def test_one_left_to_train_gets_the_share_the_whole_list_gives_it(monkeypatch):
    """A model must not depend on what an earlier run had already trained: the one base
    added to a list of two trains here on the thread count it would have had from scratch
    beside the other, not on every core; the caller's count is back afterwards. A list of
    one trains on every core; a user's OMP_NUM_THREADS is left alone."""
    import torch

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(side_by_side, "cores", lambda: 2)
    before = torch.get_num_threads()
    seen = []
    todo = {"the base of new": (lambda: seen.append(torch.get_num_threads()), ["unused"])}
    for planned, jobs in ((2, "auto"), (1, "auto"), (2, 1)):
        side_by_side.train_all(todo, planned, "base", None, {"base": {"jobs": jobs}})
    assert seen == [1, before, before] and torch.get_num_threads() == before
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    side_by_side.train_all(todo, 2, "base", None, {"base": {"jobs": "auto"}})
    assert seen[-1] == before
    side_by_side.train_all({}, 2, "base", None, {})  # nothing left: no MLflow, no children


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


def test_each_child_keeps_its_share_and_the_next_starts_when_a_place_is_free(tmp_path, monkeypatch):
    """A training's floats round by its thread count, so each child gets its share when it
    starts, whatever is left: never more when the others happen to finish (another model
    each run). Three on two jobs: the third starts as soon as one ends, on the same share
    (the long one ends only once the third has written its file)."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cmd = [sys.executable, "-c", CHILD]
    waits = {"long": f"until:{tmp_path / 'third'}", "short": "0", "third": "0"}
    side_by_side.run_all(
        {name: cmd + [str(tmp_path / name), wait] for name, wait in waits.items()}, jobs=2
    )
    runs = {n: (tmp_path / n).read_text().split() for n in waits}
    share = str(side_by_side.share(2))
    assert [runs[n][:2] for n in waits] == [[share, "0"], [share, "1"], [share, "2"]]
    assert float(runs["third"][3]) < float(runs["long"][3])


def test_a_failure_stops_the_others_and_names_the_one_that_failed(tmp_path):
    cmd = [sys.executable, "-c", CHILD]
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    t = time.monotonic()
    with pytest.raises(GrmError, match=r"broken failed \(exit status 3\)"):
        side_by_side.run_all(
            {"sleeper": sleeper, "broken": cmd + [str(tmp_path / "c"), "fail"]}, jobs=2
        )
    assert time.monotonic() - t < 30  # the sleeper was stopped, not waited for
