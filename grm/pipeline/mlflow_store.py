"""Where MLflow runs are kept and how the store is reached, and a failed stage's mark on
its pipeline run. Every stage imports this module (``stage.run_stage``), so it holds only
what is stable: an edit of what the runs record (``tracking``) reruns no evaluation.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import GrmError
from .provenance import json_digest as digest

DEFAULT_EXPERIMENT = "grm"


class TrackingUnreachable(GrmError):
    """The tracking server did not answer: nothing more is asked of it."""


def experiment_name() -> str:
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT


def store_root(root: Path) -> Path:
    """Where the embedded store lives: the repository, also for `dvc exp run --temp/--queue`.

    Those run in a throw-away copy under ``.dvc/tmp/exps/``; a store there would vanish
    with the copy, so the runs go to the repository that holds it.
    """
    root = Path(root).resolve()
    parts = root.parts
    for i in range(len(parts) - 3):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return root


def tracking_uri(root: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{store_root(root) / 'mlflow.db'}"


_CLIENTS: dict = {}  # (uri, experiment) → (client, experiment id): opened once a process


def store_client(root: Path, experiment: str):
    uri = tracking_uri(root)
    if (uri, experiment) not in _CLIENTS:
        _CLIENTS[uri, experiment] = _open_client(root, uri, experiment)
    return _CLIENTS[uri, experiment]


def _open_client(root: Path, uri: str, experiment: str):
    embedded = "MLFLOW_TRACKING_URI" not in os.environ  # set_tracking_uri sets it
    if uri.startswith(("http://", "https://")):
        # MLflow's defaults retry an unreachable server for minutes (5 retries with
        # exponential backoff, 120 s per request); a mistyped URI should fail in seconds.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    try:
        exp = client.get_experiment_by_name(experiment)
    except (MlflowException, OSError) as e:
        reason = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
        raise TrackingUnreachable(
            f"MLflow tracking server {uri} is not reachable ({reason}); fix MLFLOW_TRACKING_URI, "
            f"or unset it to track into ./mlflow.db"
        ) from None
    if exp is None:
        location = None
        if embedded:
            location = (store_root(root) / "mlartifacts").as_uri()
        exp_id = client.create_experiment(experiment, artifact_location=location)
    else:
        exp_id = exp.experiment_id
    return client, exp_id


def pipeline_tags(shared_params: dict) -> dict:
    """The tags that name a pipeline configuration's run."""
    return {"grm.pipeline": digest(shared_params), "grm.kind": "pipeline"}


def latest_run(client, exp_id: str, tags: dict):
    """The most recently started run with these tags, or None."""
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    found = client.search_runs(
        [exp_id], filter_string=query, max_results=1, order_by=["attributes.start_time DESC"]
    )
    return found[0] if found else None


def fail_pipeline_run(root: Path, shared_params: dict, why: str) -> None:
    """Mark the RUNNING pipeline run of these parameters FAILED, the failing stage's line
    in its tag ``grm.failure``: a stage that opens no run of its own (an evaluation, a classic
    ladder) would otherwise leave it RUNNING after the pipeline stopped. The next stage that
    opens it sets it RUNNING again. Nothing is created where no run exists."""
    embedded = "MLFLOW_TRACKING_URI" not in os.environ
    if embedded and not (store_root(root) / "mlflow.db").is_file():
        return
    client, exp_id = store_client(root, experiment_name())
    run = latest_run(client, exp_id, pipeline_tags(shared_params))
    if run is not None and run.info.status == "RUNNING":
        client.set_tag(run.info.run_id, "grm.failure", why[:5000])
        client.set_terminated(run.info.run_id, "FAILED")
