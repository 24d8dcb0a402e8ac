"""The stage helpers: what defines a pipeline run."""

import re

from conftest import REPO
from grm.pipeline import paths
from grm.pipeline.stage import shared_params


def test_bookkeeping_settings_do_not_change_the_pipeline_identity():
    a = {"prepare": {"source": "x"}, "train": {"steps": 10, "log_every": 5}}
    b = {"prepare": {"source": "x"}, "train": {"steps": 10, "log_every": 7}}
    assert shared_params(a) == shared_params(b), "bookkeeping must not start a new pipeline run"
    assert shared_params(a) != shared_params({**a, "train": {"steps": 11}})


def test_dvc_yaml_names_the_data_paths_the_stages_use():
    """Every data path in dvc.yaml lies in one of grm.pipeline.paths, and every one of
    those is declared there: a renamed folder cannot leave a stage writing outside DVC."""
    text = (REPO / "dvc.yaml").read_text()
    declared = {d.split("${")[0].rstrip(":") for d in re.findall(r"\bdata/[^\s'\"]+", text)}
    known = {str(p) for p in paths.ALL}

    def under(d, k):
        return d == k or d.startswith(k + "/")

    outside = {d for d in declared if not any(under(d, k) for k in known)}
    assert not outside, f"dvc.yaml paths not in grm.pipeline.paths: {sorted(outside)}"
    unused = {k for k in known if not any(under(d, k) for d in declared)}
    assert not unused, f"grm.pipeline.paths entries dvc.yaml never declares: {sorted(unused)}"
