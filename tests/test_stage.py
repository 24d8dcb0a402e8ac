"""The stage helpers: what defines a pipeline run."""

from grm.pipeline.stage import shared_params


def test_bookkeeping_settings_do_not_change_the_pipeline_identity():
    a = {"prepare": {"source": "x"}, "train": {"steps": 10, "log_every": 5}}
    b = {"prepare": {"source": "x"}, "train": {"steps": 10, "log_every": 7}}
    assert shared_params(a) == shared_params(b), "bookkeeping must not start a new pipeline run"
    assert shared_params(a) != shared_params({**a, "train": {"steps": 11}})
