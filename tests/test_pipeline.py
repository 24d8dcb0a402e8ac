"""The DVC pipeline end to end on a tiny profile, in a temporary copy of the repository."""

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from grm.checksum import sha256_file
from grm.pipeline.train import TrainSettings
from conftest import REPO

BIN = Path(sys.executable).parent

TINY = {
    "prepare": {
        "source": "bundled",
        "eval_names": ["chelsea"],
        "val_fraction": 0.2,
        "min_side": 32,
        "eval_max_side": 96,
        "images_per_shard": 2,
    },
    # dvc.yaml names each training key, so the profile lists them all (as params.yaml does).
    "train": {
        **{
            k: v
            for k, v in asdict(TrainSettings()).items()
            if k not in ("arch", "lmbda", "init_from")
        },
        "shards": "data/shards",
        "model": "tiny",
        "steps": 6,
        "batch_size": 4,
        "crop": 64,
        "lr": 0.001,
        "val_every": 3,
        "val_crop": 64,
        "log_every": 3,
        "workers": 0,
    },
    "variants": {
        "grm": {"arch": "grm"},
        "bmshj2018": {"arch": "bmshj2018-hyperprior", "model": "tiny"},
    },
    "base": {"lmbda": 0.015, "steps": 12, "lr_drop_at": 1.0},
    "rates": {"a": {"lmbda": 0.005}, "b": {"lmbda": 0.05}},
    "classic": {"jpeg": [10, 40, 80], "vvc": [37, 47]},
    "report": {"anchor": "jpeg", "labels": {"grm": "grm", "bmshj2018": "Balle 2018"}},
}


def env_for(root: Path) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    env.pop("MLFLOW_TRACKING_URI", None)  # the embedded default: mlflow.db + mlartifacts/
    env.pop("PYTHONPATH", None)
    env.update(
        {
            f"GIT_{who}_{what}": value
            for who in ("AUTHOR", "COMMITTER")
            for what, value in (("NAME", "test"), ("EMAIL", "test@example.com"))
        }
    )
    return env


def sh(root: Path, *cmd, check=True, env=None):
    r = subprocess.run(
        list(cmd),
        cwd=root,
        env={**env_for(root), **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
    )
    if check and r.returncode != 0:
        raise AssertionError(
            f"{cmd} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        )
    return r


def ran_stages(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    for item in (
        "dvc.yaml",
        "stages",
        "grm",
        ".gitignore",
        "Makefile",
        "data/photos",
        "data/eval_photos",
    ):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / item)
    (root / "params.yaml").write_text(yaml.safe_dump(TINY))
    sh(root, "git", "init", "-q")
    sh(root, str(BIN / "dvc"), "init", "-q")
    shutil.copytree(REPO / ".dvc/plots", root / ".dvc/plots")
    first = sh(root, str(BIN / "dvc"), "repro")
    return root, first.stdout


def test_pipeline_runs_end_to_end(repo):
    root, out = repo
    assert set(ran_stages(out)) == {
        "prepare",
        "classic@jpeg",
        "classic@vvc",
        "report",
        "base",
        "train",
        "export",
    } | {f"evaluate@{v}-{r}" for v in ("grm", "bmshj2018") for r in "ab"}
    summary = json.loads((root / "data/prepare_summary.json").read_text())
    assert (
        summary["found"]
        == summary["train_images"]
        + summary["val_images"]
        + summary["eval_images"]
        + summary["skipped"]
    )
    assert summary["converted_grayscale"] >= 1  # the bundled grayscale photos are counted
    for name in ("grm-a", "grm-b", "bmshj2018-a", "bmshj2018-b"):
        ev = json.loads((root / f"data/eval/{name}.json").read_text())
        assert ev["mean"]["bit_exact"] and ev["mean"]["bpp"] > 0
        assert (root / f"data/models/{name}.safetensors").is_file()
        # every rate point fine-tuned from its variant's base, whose hash is in its run key
        key = json.loads((root / f"data/checkpoints/rates/{name}/settings.json").read_text())
        variant = name.rsplit("-", 1)[0]
        assert key["settings"]["init_from"] == f"data/bases/{variant}.safetensors"
        assert key["parent"] == sha256_file(root / key["settings"]["init_from"])
    report = (root / "data/report/report.md").read_text()
    assert "BD-rate" in report and "| a |" in report
    assert (
        "| grm | Balle 2018 |" in report and "| grm | JPEG (4:2:0) |" in report
    )  # the comparison table
    assert "## grm at equal λ" in report and "| Balle 2018 | a |" in report
    for png in ("rd_psnr.png", "rd_msssim.png", "compare/chelsea.png"):
        assert (root / "data/report" / png).read_bytes()[:4] == b"\x89PNG"
    assert "![chelsea](compare/chelsea.png)" in report


def test_second_repro_does_nothing(repo):
    root, _ = repo
    r = sh(root, str(BIN / "dvc"), "repro")
    assert ran_stages(r.stdout) == [] and "up to date" in r.stdout


def test_metrics_and_plots(repo):
    root, _ = repo
    r = sh(root, str(BIN / "dvc"), "metrics", "show", "--json")
    metrics = json.loads(r.stdout)
    assert any("grm.a.bpp" in json.dumps(v) for v in metrics.values())
    assert any("bmshj2018.b.psnr" in json.dumps(v) for v in metrics.values())
    r = sh(root, str(BIN / "dvc"), "plots", "show", "-o", str(root / "plots"))
    html = (root / "plots" / "index.html").read_text()
    assert "RD-PSNR" in html and "bpp" in html
    assert '"field": "codec"' in html  # one line per codec, not one line through all


def test_mlflow_has_one_run_per_rate_point(repo):
    root, _ = repo
    code = (
        "import json, mlflow; from mlflow.tracking import MlflowClient; c = MlflowClient('sqlite:///mlflow.db');"
        "e = c.get_experiment_by_name('grm'); print(json.dumps(e.artifact_location));"
        "runs = c.search_runs([e.experiment_id]);"
        "print(json.dumps([{'name': r.info.run_name, 'kind': r.data.tags.get('grm.kind'),"
        " 'parent': r.data.tags.get('mlflow.parentRunId'), 'id': r.info.run_id,"
        " 'params': r.data.params, 'metrics': r.data.metrics,"
        " 'artifacts': [a.path for a in c.list_artifacts(r.info.run_id)]} for r in runs]))"
    )
    lines = sh(root, sys.executable, "-c", code).stdout.strip().splitlines()
    assert json.loads(lines[-2]) == (root / "mlartifacts").resolve().as_uri()
    runs = json.loads(lines[-1])
    parents = [r for r in runs if r["kind"] == "pipeline"]
    points = [r for r in runs if r["kind"] == "rate_point"]
    assert len(parents) == 1
    assert sorted(r["name"] for r in points) == ["bmshj2018-a", "bmshj2018-b", "grm-a", "grm-b"]
    for r in points:
        assert r["parent"] == parents[0]["id"]
        assert r["params"]["lmbda"] in ("0.005", "0.05")
        assert (
            "train/loss" in r["metrics"]
            and "val/loss" in r["metrics"]
            and "eval/bpp" in r["metrics"]
        )
        assert {"model", "evaluation", "training"} <= set(r["artifacts"])
    assert "report" in parents[0]["artifacts"]


def test_adding_a_rate_point_runs_only_its_stages(repo):
    root, _ = repo
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["rates"]["c"] = {"lmbda": 0.02}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    runs = sorted((root / "data/checkpoints/rates").rglob("*"))
    trained = {p: p.stat().st_mtime_ns for p in runs if p.is_file()}
    mine = root / "data/models/mine.safetensors"  # the codec's default model folder
    shutil.copy(root / "data/models/grm-a.safetensors", mine)
    r = sh(root, str(BIN / "dvc"), "repro")
    assert sorted(ran_stages(r.stdout)) == sorted(
        ["train", "export", "report"] + [f"evaluate@{v}-c" for v in ("grm", "bmshj2018")]
    )
    assert mine.read_bytes() == (root / "data/models/grm-a.safetensors").read_bytes()
    # The fine-tunes are one stage, but only the new point trained: the others are untouched;
    # the exports are one stage too, and the unchanged models' evaluations do not rerun.
    assert {p: p.stat().st_mtime_ns for p in trained} == trained
    # (Editing one point retrains only that point: the `dvc exp run -S` test below.)


def test_a_classic_ladder_change_reruns_only_that_codec(repo):
    root, _ = repo
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["classic"]["vvc"] = [37, 42, 47]
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    r = sh(root, str(BIN / "dvc"), "repro")
    assert sorted(ran_stages(r.stdout)) == ["classic@vvc", "report"]
    points = json.loads((root / "data/eval_classic/vvc.json").read_text())["points"]
    assert [p["quality"] for p in points] == [37, 42, 47]
    assert points[0]["mean"]["bpp"] > points[-1]["mean"]["bpp"] and points[0]["mean"]["psnr"] > 20


def test_exp_run_sets_one_rate_point_and_shows_its_metrics(repo):
    """`dvc exp run -S` rewrites params.yaml in its own YAML; only the edited point reruns."""
    root, _ = repo
    dvc = str(BIN / "dvc")
    sh(root, "git", "add", "-A")
    sh(root, "git", "reset", "-q", "--", "dvc.lock", "data")
    sh(root, "git", "commit", "-qm", "the project")
    sh(root, "make", "baseline")  # as the README says, before experiments
    sh(root, "make", "baseline")  # and again: nothing new to commit is fine
    tracked = sh(root, "git", "ls-files").stdout.split()
    assert (
        "data/report/metrics.json" in tracked and "data/eval/grm-a.json" in tracked
    )  # versioned in git
    assert not [
        f for f in tracked if f.startswith("data/checkpoints/") or f.endswith(".safetensors")
    ]
    r = sh(
        root, "bash", "-c", tiny_names("dvc exp run -S rates.q2.lmbda=0.02")
    )  # the README's line
    assert sorted(ran_stages(r.stdout)) == sorted(
        ["train", "export", "report"] + [f"evaluate@{v}-b" for v in ("grm", "bmshj2018")]
    )
    show = json.loads(sh(root, dvc, "exp", "show", "--json").stdout)
    exps = [e for commit in show for e in (commit.get("experiments") or [])]

    def lmbda_b(data):
        rates = ((data or {}).get("params", {}).get("params.yaml", {}).get("data") or {}).get(
            "rates", {}
        )
        return rates.get("b", {}).get("lmbda")

    runs = [
        rev["data"] for e in exps for rev in e.get("revs", []) if lmbda_b(rev.get("data")) == 0.02
    ]
    assert runs, json.dumps(show)[:2000]
    data = runs[0]
    report = data["metrics"]["data/report/metrics.json"]["data"]
    assert "grm.b.bpp" in json.dumps(report)
    diff = json.loads(sh(root, dvc, "metrics", "diff", "HEAD", "--json").stdout)
    assert "data/report/metrics.json" in diff


# The READMEs' shell lines this module runs in its tiny pipeline (tests/test_readme_blocks.py
# checks every other line is accounted for). None: the line as written, with the tiny
# profile's names (see tiny_names); a string: what runs instead, and why; "": run by
# another test of this module (named beside it) or with the line above.
README_RUNS = {
    "source .venv/bin/activate": "true",  # the tests' PATH starts with the venv's bin
    "dvc metrics show": None,
    "dvc plots show": None,
    "make baseline": "",  # run by test_exp_run_sets_one_rate_point_…
    "dvc exp run -S rates.q2.lmbda=0.02": "",  # likewise
    "dvc exp run -S '+rates.q5={lmbda: 0.025}'": None,
    (
        "dvc exp show --drop '.*' "
        "--keep 'Experiment|Created|^grm\\.q[0-9]+\\.(bpp|psnr)$|^rates\\..*\\.lmbda$'"
    ): None,
    "dvc exp show --only-changed --csv": None,
    "ACCELERATE_USE_CPU=1 torchrun --standalone --nproc_per_node 2 stages/train.py grm q1": None,
    "grm compress photo.jpg photo.grm --model data/models/grm-q2.safetensors": None,
    "grm decompress photo.grm photo.png": None,
    "grm info photo.grm": None,
    "grm compress photos/ -o coded/ --rate q2": None,
    "grm compress photos/ -o coded/ --bpp 0.3": None,
    "grm decompress coded/ -o decoded/": None,
    "cat photo.png | grm compress - - --rate q1 > photo.grm": None,
    "python -m grm --version": None,
    "for env in OMP_WAIT_POLICY= OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1; do": (
        "for env in OMP_WAIT_POLICY= OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1; do env $env "
        ".venv/bin/grm compress data/eval_images/coffee.png /tmp/c.grm "
        "--model data/models/grm-q2.safetensors; done"
    ),
    # the loop's body: run with the line above
    (
        "env $env .venv/bin/grm compress data/eval_images/coffee.png /tmp/c.grm "
        "--model data/models/grm-q2.safetensors"
    ): "",
    "done": "",
}


def tiny_names(command: str) -> str:
    """A README command with the tiny profile's names: rate points a/b (q1/q2), a new one d
    (q5), the evaluation photo chelsea, the venv of this test run, files in the scratch copy."""
    for old, new in (
        ("q[0-9]+", "[a-z]"),
        ("q1", "a"),
        ("q2", "b"),
        ("q5", "d"),
        ("coffee.png", "chelsea.png"),
        (".venv/bin/", f"{BIN}/"),
        ("/tmp/c.grm", "c.grm"),
    ):
        command = command.replace(old, new)
    return command


def test_readme_lines_run_as_written(repo):
    """The README's commands, in its order, in the tiny pipeline (after the tests above)."""
    root, _ = repo
    from PIL import Image

    photo = Image.open(root / "data/eval_images/chelsea.png")
    photo.save(root / "photo.jpg", quality=90)
    (root / "photos/sub").mkdir(parents=True)
    photo.save(root / "photos/one.png")
    photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / "photos/sub/two.jpg")
    for line, instead in README_RUNS.items():
        if instead == "":
            continue
        command = tiny_names(line if instead is None else instead)
        r = sh(root, "bash", "-c", f"set -eo pipefail; {command}")
        if line.startswith("dvc exp show"):
            assert "Experiment" in r.stdout, r.stdout[-2000:]
    assert sorted(p.name for p in (root / "coded").rglob("*.grm")) == ["one.grm", "two.grm"]
    assert sorted(p.name for p in (root / "decoded").rglob("*.png")) == ["one.png", "two.png"]
    assert (root / "photo.grm").read_bytes()[:3] and (root / "c.grm").is_file()
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["rates"]["d"] == {"lmbda": 0.025}


def documented_launch_lines() -> dict[str, str]:
    """The train stage's `cmd` lines the README gives for launching through DVC, by launcher."""
    text = (REPO / "README.md").read_text()
    found = re.findall(r"^\s*cmd: ((accelerate|torchrun) .*-m stages\.train)\s+#", text, re.M)
    return {launcher: line for line, launcher in found}


def exported_provenance(root: Path, name: str) -> dict:
    """What must not depend on the launcher: the model's config and coder, its run key, the
    step selected (the weights and validation figures do: the batch grows with the processes)."""
    from safetensors import safe_open

    with safe_open(str(root / f"data/models/{name}.safetensors"), "pt") as f:
        meta = dict(f.metadata())
    extra = json.loads(meta.pop("extra"))
    return {
        **meta,
        "step": extra["step"],
        "run_key": json.loads((root / f"data/checkpoints/rates/{name}/settings.json").read_text()),
    }


def latest_world_size(root: Path, name: str) -> str:
    code = (
        "from mlflow.tracking import MlflowClient; c = MlflowClient('sqlite:///mlflow.db');"
        "e = c.get_experiment_by_name('grm');"
        f"r = c.search_runs([e.experiment_id], \"attributes.run_name = '{name}'\", "
        "order_by=['attributes.start_time DESC'])[0];"
        "print(r.data.params['world_size'])"
    )
    return sh(root, sys.executable, "-c", code).stdout.strip().splitlines()[-1]


def test_dvc_repro_trains_a_rate_point_through_each_launcher(repo, tmp_path):
    """The README's dvc.yaml lines for Accelerate and torchrun, on 2 CPU processes: the
    model exported equals the single-process one in everything but its weights."""
    root, _ = repo
    lines = documented_launch_lines()
    assert set(lines) == {"accelerate", "torchrun"}, lines
    single = exported_provenance(root, "grm-a")
    # What `accelerate config` writes for one machine with 2 processes; ACCELERATE_USE_CPU
    # makes its multi-process launcher start CPU (gloo) ranks.
    hf = tmp_path / "hf"
    (hf / "accelerate").mkdir(parents=True)
    (hf / "accelerate/default_config.yaml").write_text(
        yaml.safe_dump(
            {
                "compute_environment": "LOCAL_MACHINE",
                "distributed_type": "MULTI_GPU",
                "num_machines": 1,
                "num_processes": 2,
                "machine_rank": 0,
                "mixed_precision": "no",
                "dynamo_config": {},
            }
        )
    )
    env = {"HF_HOME": str(hf), "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    original = (root / "dvc.yaml").read_text()
    plain = "cmd: python -m stages.train"
    assert plain in original
    try:
        for launcher, line in lines.items():
            line = line.replace("--nproc_per_node 8", "--nproc_per_node 2")
            (root / "dvc.yaml").write_text(original.replace(plain, f"cmd: {line}"))
            shutil.rmtree(root / "data/checkpoints/rates/grm-a")
            r = sh(root, str(BIN / "dvc"), "repro", "export", env=env)
            assert ran_stages(r.stdout) == ["train", "export"], (
                launcher,
                r.stdout[-2000:],
            )
            assert latest_world_size(root, "grm-a") == "2", launcher
            assert exported_provenance(root, "grm-a") == single, launcher
    finally:
        (root / "dvc.yaml").write_text(original)


def test_adding_a_variant_trains_only_its_base_and_rate_points(repo):
    """The bases are one stage (they train side by side on a CPU), but a base whose run is
    complete is not trained again, and its unchanged file reruns nothing downstream."""
    root, _ = repo
    sh(root, str(BIN / "dvc"), "repro")  # whatever the tests before left stale
    before = {v: sha256_file(root / f"data/bases/{v}.safetensors") for v in ("grm", "bmshj2018")}
    runs = sorted((root / "data/checkpoints/rates").rglob("*"))
    trained = {p: p.stat().st_mtime_ns for p in runs if p.is_file()}
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["variants"]["grm-noref"] = {"arch": "grm", "model": {"base": "tiny", "reference": False}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    r = sh(root, str(BIN / "dvc"), "repro")
    assert sorted(ran_stages(r.stdout)) == sorted(
        ["base", "train", "export", "report"]
        + [f"evaluate@grm-noref-{rate}" for rate in params["rates"]]
    )
    # the rate points already trained are left as they were
    assert {p: p.stat().st_mtime_ns for p in trained} == trained
    assert {v: sha256_file(root / f"data/bases/{v}.safetensors") for v in before} == before
    assert (root / "data/bases/grm-noref.safetensors").is_file()
    assert "resumed grm-base from step 12" in r.stderr  # found complete, not trained again
