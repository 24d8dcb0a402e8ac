"""Where MLflow runs go, whatever directory DVC runs a stage in."""

import pytest

from grm.pipeline.mlflow_store import experiment_name, store_root, tracking_uri


def test_temp_and_queued_experiments_log_to_the_repository(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    repo = tmp_path / "repo"
    copy = repo / ".dvc" / "tmp" / "exps" / "tmpab12cd"
    copy.mkdir(parents=True)
    assert store_root(copy) == repo.resolve()
    assert store_root(repo) == repo.resolve()
    assert tracking_uri(copy) == f"sqlite:///{repo.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://server:5000")
    assert tracking_uri(copy) == "http://server:5000"


def test_experiment_name(monkeypatch):
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    assert experiment_name() == "grm"
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "clic")
    assert experiment_name() == "clic"


def test_an_unreachable_tracking_server_is_one_line_and_fast(tmp_path, monkeypatch):
    import time
    from grm.errors import GrmError
    from grm.pipeline.tracking import pipeline_tracker

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    t = time.perf_counter()
    with pytest.raises(
        GrmError, match="MLflow tracking server http://127.0.0.1:9 is not reachable"
    ) as e:
        pipeline_tracker(tmp_path, {"prepare": {}, "train": {}})
    assert time.perf_counter() - t < 60 and "\n" not in str(e.value)


def test_a_file_is_recorded_in_its_run_once_and_again_after_a_cut(tmp_path, monkeypatch):
    """The export and the report rewrite unchanged files; their runs get each file once, and
    a record cut short (the block failed) is made again the next time."""
    from grm.pipeline.tracking import pipeline_tracker, recording_once

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = pipeline_tracker(tmp_path, {"prepare": {}, "train": {}}).run_id
    f = tmp_path / "model.bin"
    f.write_bytes(b"weights")
    with pytest.raises(OSError):
        with recording_once(tmp_path, run, "grm.model_sha256", f) as t:
            raise OSError("the artifact store went away")
    recorded = []
    for _ in range(2):
        with recording_once(tmp_path, run, "grm.model_sha256", f) as t:
            recorded.append(t is not None)
    f.write_bytes(b"new weights")
    with recording_once(tmp_path, run, "grm.model_sha256", f) as t:
        recorded.append(t is not None)
    assert recorded == [True, False, True]


def test_a_failed_stage_marks_its_pipeline_run_failed_with_its_line(tmp_path, monkeypatch):
    """An evaluation opens no MLflow run of its own; when it fails, the pipeline run it
    belongs to must not stay RUNNING after the pipeline stopped. Where no store exists yet,
    a failure creates none."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import mlflow

    from grm.pipeline.stage import load_params, shared_params
    from grm.pipeline.tracking import pipeline_tracker

    repo = Path(__file__).resolve().parents[1]
    shutil.copy(repo / "params.yaml", tmp_path / "params.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = str(repo)

    def evaluate():
        r = subprocess.run(
            [sys.executable, "-m", "stages.evaluate", "grm", "q1"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
        return r.stderr

    evaluate()
    assert not (tmp_path / "mlflow.db").exists()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_id = pipeline_tracker(tmp_path, shared_params(load_params(tmp_path / "params.yaml"))).run_id
    line = evaluate()
    run = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(run_id)
    assert run.info.status == "FAILED"
    assert (
        run.data.tags["grm.failure"] == "stages.evaluate: " + line.split("stage error: ")[1].strip()
    )
