"""Where MLflow runs go, whatever directory DVC runs a stage in."""

import pytest

from grm.pipeline.tracking import experiment_name, store_root, tracking_uri


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
