"""Data-parallel training on two CPU processes (gloo), and shards over HTTP."""

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from conftest import REPO, make_shards
from grm.pipeline.shards import read_images, resolve_shards, train_loader

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Eight one-image training shards and one validation shard of distinct images."""
    return make_shards(tmp_path_factory.mktemp("shards"), 8, 1, 80, 96)


def test_two_rank_training_is_disjoint_and_in_sync(shards, tmp_path):
    params = {
        "train": {
            "shards": str(shards),
            "model": "tiny",
            "steps": 6,
            "batch_size": 2,
            "crop": 64,
            "lr": 0.001,
            "val_every": 3,
            "val_crop": 64,
            "log_every": 2,
            "workers": 0,
        },
        "variants": {"grm": {"arch": "grm"}},
        "rates": {"r": {"lmbda": 0.01, "init_from": ""}},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = dict(
        os.environ,
        ACCELERATE_USE_CPU="1",
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
        PYTHONPATH=str(REPO),
        OMP_NUM_THREADS="1",
    )
    cmd = [
        str(BIN / "torchrun"),
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "stages.train",
        "grm",
        "r",
        "--params",
        str(tmp_path / "params.yaml"),
        "--out",
        str(tmp_path / "ckpt"),
        "--trace-dir",
        str(tmp_path / "trace"),
    ]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    t0 = json.loads((tmp_path / "trace/rank0.json").read_text())
    t1 = json.loads((tmp_path / "trace/rank1.json").read_text())
    assert t0["world"] == t1["world"] == 2
    assert t0["keys"] and t1["keys"] and not set(t0["keys"]) & set(t1["keys"]), (
        "ranks saw the same images"
    )
    assert t0["weights"] == t1["weights"], "ranks' weights diverged"
    # One writer: one set of checkpoints, one history, one MLflow run.
    ckpt = tmp_path / "ckpt"
    assert sorted(p.name for p in (ckpt / "weights").iterdir()) == [
        "step-00000003.safetensors",
        "step-00000006.safetensors",
    ]
    assert len(json.loads((ckpt / "history.json").read_text())) == 2
    code = (
        "import mlflow; c = mlflow.tracking.MlflowClient(); e = c.get_experiment_by_name('grm');"
        "print(len([r for r in c.search_runs([e.experiment_id]) if r.data.tags.get('grm.kind') == "
        "'rate_point']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.strip().splitlines()[-1] == "1"


def test_shards_over_http(shards):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(shards))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        urls = resolve_shards(base + "/{split}-{000000..000007}.tar", "train")
        assert len(urls) == 8
        batches = train_loader(urls, crop=32, batch_size=4, crops_per_image=2, seed=1)
        keys = set()
        for _ in range(8):
            x, k = next(batches)
            assert x.shape == (4, 3, 32, 32) and 0 <= float(x.min()) and float(x.max()) <= 1
            keys.update(k)
        assert len(keys) >= 4
        val = list(read_images(resolve_shards(base + "/{split}-000000.tar", "val")))
        assert [k for k, _ in val] == ["img08"] and val[0][1].shape == (80, 96, 3)
    finally:
        server.shutdown()


def test_too_few_shards_is_a_clear_error(shards):
    with pytest.raises(ValueError, match="cannot feed"):
        train_loader(resolve_shards(str(shards), "val"), crop=32, batch_size=2, world=2)
