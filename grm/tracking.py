"""MLflow bookkeeping: one parent run per pipeline configuration, one child per rate point.

Stages are separate processes, so runs are found again by tags rather than passed
around in memory: the parent by a digest of the shared parameters, the child by rate
point name and a digest of its own settings. MLflow is imported lazily (it costs ~1 s).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

DEFAULT_EXPERIMENT = "grm"


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def tracking_uri(root: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root / 'mlflow.db').resolve()}"


def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _client(root: Path, experiment: str):
    import mlflow
    from mlflow.tracking import MlflowClient
    embedded = "MLFLOW_TRACKING_URI" not in os.environ   # set_tracking_uri sets it
    uri = tracking_uri(root)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        location = None
        if embedded:
            location = (root / "mlartifacts").resolve().as_uri()
        exp_id = client.create_experiment(experiment, artifact_location=location)
    else:
        exp_id = exp.experiment_id
    return client, exp_id


def _find_or_create(client, exp_id, tags: dict, name: str, parent: str | None = None) -> str:
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    found = client.search_runs([exp_id], filter_string=query, max_results=1,
                               order_by=["attributes.start_time DESC"])
    if found:
        return found[0].info.run_id
    all_tags = dict(tags)
    if parent:
        all_tags["mlflow.parentRunId"] = parent
    run = client.create_run(exp_id, tags=all_tags, run_name=name)
    client.set_terminated(run.info.run_id, "RUNNING")
    return run.info.run_id


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
        import math
        import time
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step or 0) for k, v in metrics.items()
                 if v is not None and math.isfinite(float(v))]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def tags(self, tags: dict) -> None:
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, str(v))

    def artifact(self, path: Path, folder: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), folder)

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def pipeline_tracker(root: Path, shared_params: dict, experiment: str = DEFAULT_EXPERIMENT) -> Tracker:
    client, exp_id = _client(root, experiment)
    pid = digest(shared_params)
    run_id = _find_or_create(client, exp_id, {"grm.pipeline": pid, "grm.kind": "pipeline"}, f"pipeline-{pid[:8]}")
    t = Tracker(client, run_id, exp_id)
    t.tags({"git_commit": git_commit(root)})
    t.params(shared_params)
    return t


def rate_point_tracker(root: Path, shared_params: dict, name: str, settings: dict,
                       experiment: str = DEFAULT_EXPERIMENT) -> Tracker:
    parent = pipeline_tracker(root, shared_params, experiment)
    fp = digest(settings)
    run_id = _find_or_create(parent.client, parent.experiment_id,
                             {"grm.rate_point": name, "grm.fingerprint": fp, "grm.kind": "rate_point"},
                             name, parent=parent.run_id)
    t = Tracker(parent.client, run_id, parent.experiment_id)
    t.tags({"git_commit": git_commit(root)})
    return t


def tracker_for_run(root: Path, run_id: str, experiment: str = DEFAULT_EXPERIMENT) -> Tracker:
    client, exp_id = _client(root, experiment)
    return Tracker(client, run_id, exp_id)
