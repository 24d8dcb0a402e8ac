"""Independent trainings side by side on one CPU, each with its share of the cores.

A compact model's training step is a stream of small parallel regions, so a second thread
adds little to one training: on 2 cores two 1-thread trainings do about 1.3× the steps of
one 2-thread training after the other (README, "Bases side by side"). Under a distributed
launcher the trainings run one after another instead; on a GPU too, unless a number of
jobs is asked for.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time

from ..errors import GrmError
from ..threads import cores

# Tells a child its row for its progress bar, so that bars side by side do not overwrite
# each other (train.py reads it).
PROGRESS_ROW = "GRM_PROGRESS_ROW"


def jobs_for(requested, planned: int, key: str = "base.jobs") -> int:
    """How many trainings to run at once: ``requested`` (the setting ``key``; 'auto': one
    per core), never more than the cores or the ``planned`` trainings (those params.yaml
    defines for the stage, trained or not), and 1 under a launcher. On a GPU 'auto' is 1,
    and a number shares the one GPU among that many trainings: a compact model's small
    kernels leave most of it idle. It sets each training's ``share`` of the cores, and so
    its floats: hence the planned count, never the count left to train."""
    if requested in (None, "auto"):
        wanted = cores()
    elif isinstance(requested, int) and not isinstance(requested, bool) and requested >= 1:
        wanted = requested
    else:
        raise ValueError(f"{key} must be 'auto' or a positive integer, got {requested!r}")
    if planned < 2 or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return 1
    import torch

    if torch.cuda.is_available() and requested in (None, "auto"):
        return 1
    return max(1, min(wanted, planned, cores()))


def share(jobs: int) -> int:
    """The threads of each training when ``jobs`` run at once."""
    return max(1, cores() // jobs)


def train_all(todo: dict, planned: int, section: str, root, params: dict) -> None:
    """Train each of ``todo`` (label → (a function that trains it in this process, the
    command that trains it alone)), of the ``planned`` trainings params.yaml defines for
    the stage: ``jobs_for`` at a time, each a child process with its share of the cores; one
    alone (or with one job) here, on that same share. A training gets the share the whole
    list gives it, whatever is left to train, so that a model does not depend on what an
    earlier run had trained: a variant added to the list trains as it would from scratch
    (alone on one core of two, 1.5× slower than on both)."""
    requested = (params.get(section) or {}).get("jobs", "auto")
    jobs = jobs_for(requested, planned, f"{section}.jobs")
    if not todo:
        return
    if jobs == 1 or len(todo) == 1:
        from ..threads import torch_threads

        ours = jobs > 1 and "OMP_NUM_THREADS" not in os.environ
        with torch_threads(share(jobs)) if ours else contextlib.nullcontext():
            for here, _ in todo.values():
                here()
        return
    from .stage import shared_params
    from .tracking import start_pipeline_run

    start_pipeline_run(root, shared_params(params))  # before the children: one parent run
    run_all({label: cmd for label, (_, cmd) in todo.items()}, jobs)


def run_all(commands: dict[str, list[str]], jobs: int) -> None:
    """Run each command as its own process, ``jobs`` at a time, each with its ``share`` of
    the cores as OpenMP threads (a user's own OMP_NUM_THREADS wins) from start to end: a
    training's floats round by its thread count, so a count raised when the others happened
    to finish would make every run's model another. The first failure stops the others
    (their trainings resume from their last checkpoint) and is raised as a GrmError."""
    pending = list(commands.items())
    running: dict[str, subprocess.Popen] = {}
    rows = iter(range(len(commands)))
    try:
        while pending or running:
            while pending and len(running) < jobs:
                name, cmd = pending.pop(0)
                env = {**os.environ, PROGRESS_ROW: str(next(rows))}
                env.setdefault("OMP_NUM_THREADS", str(share(jobs)))
                running[name] = subprocess.Popen(cmd, env=env)
            for name, proc in list(running.items()):
                code = proc.poll()
                if code is None:
                    continue
                del running[name]
                if code != 0:
                    raise GrmError(f"{name} failed (exit status {code}); its error is above")
            time.sleep(0.2)
    finally:
        for proc in running.values():
            proc.terminate()
        for proc in running.values():
            proc.wait()
