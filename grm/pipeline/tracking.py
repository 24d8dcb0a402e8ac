"""MLflow bookkeeping: one parent run per pipeline configuration, one child per rate point.

Stages are separate processes, so runs are found again by tags rather than passed
around in memory: the parent by a digest of the shared parameters, the child by rate
point name and a digest of its own settings. MLflow is imported lazily (it costs ~1 s).
"""

from __future__ import annotations

import contextlib
import math
import subprocess
import time
from pathlib import Path

from .mlflow_store import store_client as _client
from .mlflow_store import experiment_name, latest_run, pipeline_tags

_OPEN: list = []  # runs this process started or resumed: marked FAILED if the stage fails


def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _find_or_create(
    client, exp_id, tags: dict, name: str, parent: str | None = None, new: bool = False
) -> str:
    """The latest run with these tags (under ``parent``), set RUNNING again; else (or if
    ``new``) a new one."""
    if parent:
        tags = {**tags, "mlflow.parentRunId": parent}
    found = None if new else latest_run(client, exp_id, tags)
    if found is not None:
        run_id = found.info.run_id
        if found.info.status != "RUNNING":
            client.update_run(run_id, status="RUNNING")
        return run_id
    return client.create_run(exp_id, tags=tags, run_name=name).info.run_id


class Tracker:
    """Thin wrapper over MlflowClient bound to one run."""

    def __init__(self, client, run_id: str, experiment_id: str):
        self.client, self.run_id, self.experiment_id = client, run_id, experiment_id

    def params(self, params: dict, prefix: str = "") -> None:
        flat = _flatten(params, prefix)
        existing = self.client.get_run(self.run_id).data.params
        fresh = {k: str(v)[:6000] for k, v in flat.items() if k not in existing}
        from mlflow.entities import Param

        if fresh:
            self.client.log_batch(self.run_id, params=[Param(k, v) for k, v in fresh.items()])

    def metrics(self, metrics: dict, step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [
            Metric(k, float(v), now, step or 0)
            for k, v in metrics.items()
            if v is not None and math.isfinite(float(v))
        ]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def tags(self, tags: dict) -> None:
        from mlflow.entities import RunTag

        if tags:
            self.client.log_batch(
                self.run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()]
            )

    def artifact(self, path: Path, folder: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), folder)

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)
        if self in _OPEN:
            _OPEN.remove(self)


def fail_open_runs() -> None:
    """Mark every run this process opened as FAILED (the stage is dying)."""
    while _OPEN:
        t = _OPEN.pop()
        try:
            t.client.set_terminated(t.run_id, "FAILED")
        except Exception:  # noqa: BLE001 - the stage's own error is the one to report
            pass


def _opened(t: "Tracker") -> "Tracker":
    _OPEN.append(t)
    t.tags({"mlflow.source.git.commit": git_commit(Path.cwd())})
    return t


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def pipeline_tracker(root: Path, shared_params: dict, experiment: str | None = None) -> Tracker:
    client, exp_id = _client(root, experiment or experiment_name())
    tags = pipeline_tags(shared_params)
    run_id = _find_or_create(client, exp_id, tags, f"pipeline-{tags['grm.pipeline'][:8]}")
    t = _opened(Tracker(client, run_id, exp_id))
    t.params(shared_params)
    return t


def start_pipeline_run(root: Path, shared_params: dict, experiment: str | None = None) -> None:
    """Find or create the pipeline run before trainings start side by side, so that their
    child runs share one parent (two processes searching at once would each create one)."""
    _OPEN.remove(pipeline_tracker(root, shared_params, experiment))


def rate_point_tracker(
    root: Path,
    shared_params: dict,
    name: str,
    fingerprint: str,
    experiment: str | None = None,
    kind: str = "rate_point",
    fresh: bool = False,
) -> Tracker:
    """The child run of one (variant, rate point), or of a variant's base (``kind="base"``),
    under its pipeline run, keyed by its run key. A resumed training continues its run; a
    ``fresh`` one (no checkpoint to resume, e.g. its folder was deleted) gets a new run, so
    that two trainings never share one metric history."""
    parent = pipeline_tracker(root, shared_params, experiment)
    run_id = _find_or_create(
        parent.client,
        parent.experiment_id,
        {"grm.rate_point": name, "grm.fingerprint": fingerprint, "grm.kind": kind},
        name,
        parent=parent.run_id,
        new=fresh,
    )
    _OPEN.remove(parent)  # the parent stays RUNNING until the report finishes it
    return _opened(Tracker(parent.client, run_id, parent.experiment_id))


def tracker_for_run(root: Path, run_id: str, experiment: str | None = None) -> Tracker:
    client, exp_id = _client(root, experiment or experiment_name())
    return _opened(Tracker(client, run_id, exp_id))


@contextlib.contextmanager
def recording_once(root: Path, run_id: str | None, tag: str, path: Path):
    """The tracker of ``run_id``, or None if there is no run or it already holds ``path``'s
    bytes (its ``tag`` is their sha256): a stage that rewrites the same file (an unchanged
    model, an unchanged evaluation) records nothing twice. The tag is set once what the
    block records is in, so a record cut short is made again at the next run."""
    import hashlib

    if not run_id:
        yield None
        return
    sha = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    client, _ = _client(root, experiment_name())
    if client.get_run(run_id).data.tags.get(tag) == sha:
        yield None
        return
    t = tracker_for_run(root, run_id)
    yield t
    t.tags({tag: sha})
