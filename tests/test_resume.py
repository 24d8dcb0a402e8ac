"""The training loop: exact resume after kill -9, non-finite steps, one update per step."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
import torch
from safetensors.torch import load_file

from conftest import REPO, make_shards

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("shards"), 4, 1, 72, 72)


def write_params(path: Path, shards: Path, **train):
    base = {
        "shards": str(shards),
        "model": "tiny",
        "steps": 60,
        "batch_size": 2,
        "crop": 64,
        "lr": 0.002,
        "lr_drop_at": 0.5,
        "val_every": 5,
        "val_crop": 64,
        "log_every": 5,
        "workers": 0,
        "keep_states": 2,
    }
    base.update(train)
    path.write_text(
        yaml.safe_dump(
            {
                "train": base,
                "variants": {"grm": {"arch": "grm"}},
                "rates": {"r": {"lmbda": 0.01, "init_from": ""}},
            }
        )
    )


def train_cmd(tmp: Path, out: str):
    return [
        sys.executable,
        "-m",
        "stages.train",
        "grm",
        "r",
        "--params",
        str(tmp / "params.yaml"),
        "--out",
        str(tmp / out),
    ]


def env(tmp):
    return dict(
        os.environ,
        PYTHONPATH=str(REPO),
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}",
        OMP_NUM_THREADS="1",
    )


def test_killed_run_resumes_to_identical_weights(shards, tmp_path):
    write_params(tmp_path / "params.yaml", shards)
    r = subprocess.run(
        train_cmd(tmp_path, "straight"),
        cwd=tmp_path,
        env=env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]

    proc = subprocess.Popen(
        train_cmd(tmp_path, "killed"),
        cwd=tmp_path,
        env=env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    states = tmp_path / "killed" / "state"
    deadline = time.time() + 300
    while time.time() < deadline and not (states / "step-00000010").is_dir():
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed/weights/step-00000060.safetensors").exists(), (
        "run finished before the kill"
    )
    r = subprocess.run(
        train_cmd(tmp_path, "killed"),
        cwd=tmp_path,
        env=env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed" in r.stderr
    a = load_file(tmp_path / "straight/weights/step-00000060.safetensors")
    b = load_file(tmp_path / "killed/weights/step-00000060.safetensors")
    assert a.keys() == b.keys()
    diffs = {k: float((a[k].double() - b[k].double()).abs().max()) for k in a}
    assert max(diffs.values()) == 0.0, sorted(diffs.items(), key=lambda kv: -kv[1])[:5]
    history = json.loads((tmp_path / "killed/history.json").read_text())
    assert [h["step"] for h in history] == list(range(5, 61, 5)), "steps lost or repeated"
    # No partial checkpoint is ever taken as the latest.
    assert not list(states.glob("*.tmp"))


def test_non_finite_losses_are_skipped_then_stop_the_run(shards, tmp_path):
    write_params(tmp_path / "params.yaml", shards, max_bad_steps=3)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["rates"]["r"]["lmbda"] = float("nan")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    r = subprocess.run(
        train_cmd(tmp_path, "nan"),
        cwd=tmp_path,
        env=env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 1
    assert "3 consecutive non-finite steps" in r.stderr and "Traceback" not in r.stderr
    state = tmp_path / "nan/state/step-00000003"
    meta = json.loads((state / "trainer.json").read_text())
    assert meta["step"] == 3 and meta["bad_steps"] == 3


def test_one_optimizer_step_per_step_and_lr_drop_on_schedule(shards, tmp_path):
    """Adam's first update moves a weight by at most lr (a second step() would give
    about 2·lr); after the drop the next update is about lr/10."""
    from accelerate.utils import set_seed
    from grm.model_file import build

    lr = 0.01
    write_params(
        tmp_path / "params.yaml",
        shards,
        steps=2,
        lr=lr,
        aux_lr=lr,
        transform_lr_scale=1.0,
        lr_drop_at=0.5,
        val_every=1,
        clip=0,
    )
    r = subprocess.run(
        train_cmd(tmp_path, "two"),
        cwd=tmp_path,
        env=env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    set_seed(0)
    start = build("grm", "tiny")
    start.update(force=True)
    w0 = {k: v.detach() for k, v in start.state_dict().items()}
    w1 = load_file(tmp_path / "two/weights/step-00000001.safetensors")
    w2 = load_file(tmp_path / "two/weights/step-00000002.safetensors")
    params = [n for n, _ in start.named_parameters()]

    def moved(a, b):
        return max(float((a[k].double() - b[k].double()).abs().max()) for k in params)

    assert 0.5 * lr < moved(w0, w1) <= lr * 1.001
    assert moved(w1, w2) <= 0.15 * lr


def run_train(tmp: Path, out: str, check=True):
    r = subprocess.run(
        train_cmd(tmp, out), cwd=tmp, env=env(tmp), capture_output=True, text=True, timeout=600
    )
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def run_status(tmp: Path) -> dict:
    code = (
        "import json, mlflow; c = mlflow.tracking.MlflowClient(); e = "
        "c.get_experiment_by_name('grm');"
        "print(json.dumps({r.info.run_id: [r.info.status, r.data.tags.get('grm.kind'),"
        " r.data.tags.get('grm.fresh_start'), r.data.tags.get('mlflow.source.git.commit')]"
        " for r in c.search_runs([e.experiment_id])}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env(tmp), capture_output=True, text=True, timeout=120
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_changed_data_or_settings_retrain_from_scratch_bookkeeping_does_not(tmp_path):
    shards = make_shards(tmp_path / "shards", 4, 1, 72, 72)
    write_params(tmp_path / "params.yaml", shards, steps=6, val_every=3, log_every=3)
    run_train(tmp_path, "ck")
    before = load_file(tmp_path / "ck/weights/step-00000006.safetensors")
    # Same inputs, only bookkeeping edited: found complete, trains nothing.
    write_params(tmp_path / "params.yaml", shards, steps=6, val_every=3, log_every=2, keep_states=3)
    r = run_train(tmp_path, "ck")
    assert "grm-r is complete at step 6: not trained again" in r.stderr
    assert "from step 0" not in r.stderr
    # New shard contents under the same path: trains from step 0, on the new data.
    make_shards(tmp_path / "shards", 4, 1, 80, 80)
    r = run_train(tmp_path, "ck")
    assert "training data changed" in r.stderr and "training from step 0" in r.stderr
    assert "resumed" not in r.stderr
    after = load_file(tmp_path / "ck/weights/step-00000006.safetensors")
    assert any(not (before[k] == after[k]).all() for k in before), (
        "weights of the old data were kept"
    )
    statuses = [s for s in run_status(tmp_path).values() if s[1] == "rate_point"]
    assert len(statuses) == 2, "a fresh start must get its own MLflow run"
    assert [s[2] for s in statuses if s[2]] == ["training data changed"]
    # Each run ends with its training (the one found complete too), not at the report.
    assert [s[0] for s in statuses] == ["FINISHED", "FINISHED"]
    # A setting that decides the weights: from scratch again.
    write_params(tmp_path / "params.yaml", shards, steps=6, val_every=3, seed=1)
    r = run_train(tmp_path, "ck")
    assert "settings changed" in r.stderr and "training from step 0" in r.stderr


def test_failing_train_stage_marks_its_mlflow_run_failed(tmp_path):
    shards = make_shards(tmp_path / "shards", 4, 1, 72, 72)
    write_params(tmp_path / "params.yaml", shards, steps=4, val_every=2, max_bad_steps=2)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["rates"]["r"]["lmbda"] = float("nan")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    r = run_train(tmp_path, "bad", check=False)
    assert r.returncode == 1
    runs = run_status(tmp_path)
    assert [s[0] for s in runs.values() if s[1] == "rate_point"] == ["FAILED"]
    assert all(s[3] for s in runs.values()), "every run carries mlflow.source.git.commit"


# The in-process runs below: the smallest training that writes a checkpoint at its last step.
IN_PROCESS = {
    "model": "tiny",
    "steps": 2,
    "batch_size": 2,
    "crop": 64,
    "val_every": 2,
    "val_crop": 64,
    "workers": 0,
}


def test_a_fine_tune_is_keyed_by_its_parent_and_restarts_when_the_parent_changes(shards, tmp_path):
    """A rate point resumes only on top of the same base: its run key holds the base's sha256."""
    import dataclasses

    from grm.checksum import sha256_file
    from grm.pipeline.train import TrainSettings, is_complete, train

    tiny = {**IN_PROCESS, "steps": 4}
    parent = tmp_path / "base.safetensors"

    def train_parent(seed):
        out = train("base", TrainSettings(**tiny, seed=seed), str(shards), tmp_path / f"base{seed}")
        parent.write_bytes(
            (tmp_path / f"base{seed}/weights/step-{out.steps:08d}.safetensors").read_bytes()
        )

    train_parent(0)
    child = TrainSettings(**tiny, lmbda=0.05, init_from=str(parent))
    first = train("child", child, str(shards), tmp_path / "child")
    key = json.loads((tmp_path / "child/settings.json").read_text())
    assert key["parent"] == sha256_file(parent) and first.steps == 4
    again = train("child", child, str(shards), tmp_path / "child")
    assert again.resumed_from == 4 and not again.restarted_because  # same parent: nothing to do
    # what the base stage asks before it spends cores on a run (stages/base.py)
    assert is_complete(child, str(shards), tmp_path / "child", "")
    assert not is_complete(dataclasses.replace(child, steps=5), str(shards), tmp_path / "child", "")
    assert not is_complete(child, str(shards), tmp_path / "child", "other code")
    train_parent(1)  # the base is retrained
    assert not is_complete(child, str(shards), tmp_path / "child", "")
    fresh = train("child", child, str(shards), tmp_path / "child")
    assert fresh.restarted_because == ["parent model"] and fresh.resumed_from == 0


def test_init_from_refuses_weights_of_another_model(shards, tmp_path):
    from grm.pipeline.train import TrainSettings, train

    tiny = IN_PROCESS
    out = train(
        "peer", TrainSettings(**tiny, arch="bmshj2018-hyperprior"), str(shards), tmp_path / "peer"
    )
    weights = tmp_path / f"peer/weights/step-{out.steps:08d}.safetensors"
    with pytest.raises(ValueError, match="does not fit this model"):
        train("grm", TrainSettings(**tiny, init_from=str(weights)), str(shards), tmp_path / "grm")
    # an exported model file (with its integer entropy model) is a valid start, as the README says
    from grm.model_file import build, save_model

    exported = save_model(build("grm", "tiny"), tmp_path / "grm-q3.safetensors", name="grm-q3")
    assert (
        train(
            "ft", TrainSettings(**tiny, init_from=str(exported)), str(shards), tmp_path / "ft"
        ).steps
        == 2
    )


def test_auto_precision_is_resolved_into_the_run_key(shards, tmp_path):
    """`auto` trains in bf16 only where the hardware has it; the key records what was used."""
    from grm.pipeline.train import TrainSettings, resolve_precision, train

    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    used = resolve_precision("auto")
    native = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
    if not torch.cuda.is_available():
        assert used == ("bf16" if native else "fp32")
    s = TrainSettings.from_dict({**IN_PROCESS, "mixed_precision": "auto"})
    train("auto", s, str(shards), tmp_path / "auto")
    key = json.loads((tmp_path / "auto/settings.json").read_text())
    assert key["settings"]["mixed_precision"] == used


def test_a_changed_setting_that_fails_at_start_keeps_the_finished_run(shards, tmp_path):
    """A typo (here: an unreachable shard URL) must never cost a finished checkpoint."""
    from grm.errors import GrmError
    from grm.pipeline.train import TrainSettings, train

    tiny = IN_PROCESS
    out = tmp_path / "run"
    train("r", TrainSettings(**tiny), str(shards), out)
    t = time.perf_counter()
    with pytest.raises(GrmError, match="cannot read shard http://127.0.0.1:9/"):
        train("r", TrainSettings(**tiny), "http://127.0.0.1:9/{split}-{000000..000001}.tar", out)
    assert time.perf_counter() - t < 60, "an unreachable shard server must fail fast"
    assert (tmp_path / "run.previous/weights/step-00000002.safetensors").is_file()
    back = train("r", TrainSettings(**tiny), str(shards), out)  # the setting put back
    assert back.resumed_from == 2 and not back.restarted_because
    assert not (tmp_path / "run.previous").exists()
    fresh = train("r", TrainSettings(**tiny, seed=1), str(shards), out)  # a new run that starts...
    assert fresh.restarted_because == ["settings"] and fresh.steps == 2
    assert not (tmp_path / "run.previous").exists()  # ...then the old one goes


def test_weight_average_is_what_is_kept_and_resumes_exactly(shards, tmp_path):
    """With train.ema the kept weights are the average (not the last step's), and a run
    resumed from a checkpoint continues the same average to the same bytes."""
    import shutil

    from grm.pipeline.train import TrainSettings, train

    s = TrainSettings(**{**IN_PROCESS, "steps": 4, "lr": 0.01}, ema=0.9)
    train("ema", s, str(shards), tmp_path / "straight")
    kept = load_file(tmp_path / "straight/weights/step-00000004.safetensors")
    last = load_file(tmp_path / "straight/state/step-00000004/model.safetensors")
    average = load_file(tmp_path / "straight/state/step-00000004/average.safetensors")
    assert average and all(torch.equal(kept[k], v) for k, v in average.items())
    moved = [k for k, v in average.items() if not torch.equal(v, last[f"model.{k}"])]
    assert moved, "the kept weights are the last step's, not their average"

    shutil.copytree(tmp_path / "straight", tmp_path / "resumed")
    shutil.rmtree(tmp_path / "resumed/state/step-00000004")
    (tmp_path / "resumed/weights/step-00000004.safetensors").unlink()
    again = train("ema", s, str(shards), tmp_path / "resumed")
    assert again.resumed_from == 2
    resumed = load_file(tmp_path / "resumed/weights/step-00000004.safetensors")
    assert all(torch.equal(kept[k], resumed[k]) for k in kept)


def test_the_stage_trains_every_rate_point_side_by_side_then_skips_them(shards, tmp_path):
    """`python -m stages.train` trains every (variant, rate point) not yet complete, two at
    a time (train.jobs), and a second call trains nothing."""
    write_params(tmp_path / "params.yaml", shards, steps=6, val_every=3, jobs=2)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["rates"]["s"] = {"lmbda": 0.02, "init_from": "", "steps": 9}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    cmd = [sys.executable, "-m", "stages.train", "--params", str(tmp_path / "params.yaml")]

    def run(*extra):
        return subprocess.run(
            cmd + list(extra),
            cwd=tmp_path,
            env=env(tmp_path),
            capture_output=True,
            text=True,
            timeout=600,
        )

    r = run()
    assert r.returncode == 0, r.stderr[-3000:]
    runs = tmp_path / "data/checkpoints/rates"
    assert (runs / "grm-r/weights/step-00000006.safetensors").is_file()
    assert (runs / "grm-s/weights/step-00000009.safetensors").is_file()
    r = run()
    assert r.returncode == 0, r.stderr[-3000:]
    assert "grm-r is complete at step 6: not trained again" in r.stderr
    assert "grm-s is complete at step 9: not trained again" in r.stderr
    r = run("--out", str(tmp_path / "elsewhere"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "--out names the folder of one rate point" in r.stderr.strip().splitlines()[-1]
