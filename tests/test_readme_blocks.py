"""The READMEs' shell blocks as a contract: every line is run by a test, or named here with
the reason it cannot run on a 2-core machine without a GPU and the test that runs its
nearest form. A README edit that adds a command nobody runs fails here.

The lines themselves run in tests/test_pipeline.py (its tiny pipeline: README_RUNS), the
profiles for two steps below, the `mlflow ui` line in tests/test_readme_commands.py.
"""

import re
from pathlib import Path

import pytest
import yaml

from conftest import READMES, REPO, make_shards
from test_pipeline import README_RUNS


# Lines not run as written, each with why and where its nearest form runs.
NOT_RUN_HERE = {
    r"^rm -rf data/checkpoints/bases data/bases && python -m stages.base": (
        "two base trainings compared by hash (docs/log.md, 2026-12-06 afternoon); the fixed "
        "thread counts it shows are tested in tests/test_side_by_side.py"
    ),
    r"^make run\b": (
        "the full default run (25 min, measured in the README); its dvc repro runs on a tiny "
        "profile in tests/test_pipeline.py, the profiles for 2 steps in "
        "test_profiles_train_two_steps"
    ),
    r"^make test\b": "is the test suite itself (.ci/run)",
    r"^cp profiles/\w+\.yaml params\.yaml && make run": (
        "35 min to 2.5 h here, days for the paper profile: each profile trains 2 steps in "
        "test_profiles_train_two_steps"
    ),
    r"^make bench\b|^\.venv/bin/python benchmarks/"
    r"|^(\w+=\S+ )*\.venv/bin/torchrun .* benchmarks/": (
        "benchmarks (minutes to hours, some a GPU): each command line is parsed by "
        "tests/test_readme_commands.py"
    ),
    r"^make run && \.venv/bin/python benchmarks/bench_quality\.py": (
        "the full run, then a wheel download: parsed by tests/test_readme_commands.py"
    ),
    r"^accelerate config$": (
        "interactive; tests/test_pipeline.py writes the file it writes "
        "(test_dvc_repro_trains_a_rate_point_through_each_launcher)"
    ),
    r"^accelerate launch |^torchrun --nnodes": (
        "GPUs or several nodes: tests/test_pipeline.py trains through both launchers on 2 CPU "
        "processes, tests/test_distributed.py checks the ranks"
    ),
    r"^export MLFLOW_(TRACKING_URI|EXPERIMENT_NAME)=": (
        "a remote server: tests/test_tracking.py checks an unreachable URI fails in one line"
    ),
    r"^dvc add data/raw$|^dvc repro$": (
        "your own photos: tests/test_prepare.py prepares a folder source"
    ),
    r"^pip install \.": (
        "installs into the current environment: tests/test_cli_batch.py runs the codec with every "
        "pipeline package made unimportable"
    ),
    r"--device cuda": "a GPU: benchmarks/cross_device.py on one",
    r"mlflow ui ": "tests/test_readme_commands.py::test_documented_mlflow_ui_serves_and_stops",
    r"^for env in OMP_WAIT_POLICY=PASSIVE OMP_WAIT_POLICY=ACTIVE ": (
        "a 4-minute timing of the base stage: tests/test_threads.py checks each stage's policy"
    ),
    r"^rm -rf data/checkpoints/bases; timeout 100 ": (
        "100-second timings of the base stage: tests/test_pipeline.py trains the bases side by "
        "side (its first run) and one alone (test_adding_a_variant_trains_only_its_base_…)"
    ),
    r"^python -m stages\.prepare && python -m stages\.base( grm)?$"
    r"|^(rm -rf data/checkpoints/rates; )?time python -m stages\.train$": (
        "11- and 16-minute timings of the fine-tunes in a copy of the repository: "
        "tests/test_resume.py "
        "trains rate points side by side, tests/test_pipeline.py the train stage through DVC"
    ),
    r"^dvc repro -f -s (export|evaluate@grm-q1)$": (
        "timings of a finished run's stages: tests/test_pipeline.py reruns the export stage "
        "through DVC (test_dvc_repro_trains_a_rate_point_through_each_launcher) and the "
        "evaluations (test_adding_a_rate_point_runs_only_its_stages)"
    ),
    r"^dvc exp run --queue ": (
        "retrains every model (the queue's copy has no checkpoints, as the README says): minutes "
        "even at the tiny profile; DVC's queue is DVC's to test"
    ),
}


def shell_lines() -> list[str]:
    """Every command line of the READMEs' bash blocks: continuations joined, comments and
    comment-only lines dropped, whitespace squeezed."""
    lines = []
    for readme in READMES:
        for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", readme.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = re.sub(
                    r"\s+#(?!\S*').*$", "", line
                ).strip()  # a trailing comment (not '#' in a quote)
                if line and not line.startswith("#"):
                    lines.append(re.sub(r"\s+", " ", line))
    return lines


def normalise(line: str) -> str:
    return re.sub(r"\s+", " ", line).strip()


def test_every_readme_line_is_run_or_accounted_for():
    run = {normalise(k) for k in README_RUNS}
    documented = shell_lines()
    unaccounted = [
        ln for ln in documented if ln not in run and not any(re.search(p, ln) for p in NOT_RUN_HERE)
    ]
    assert not unaccounted, (
        "README lines that no test runs; run them in tests/test_pipeline.py "
        f"(README_RUNS) or say why not in NOT_RUN_HERE: {unaccounted}"
    )
    stale = [k for k in README_RUNS if normalise(k) not in documented]
    assert not stale, f"README_RUNS lists lines the READMEs no longer have: {stale}"


def tiny(profile: dict, shards: Path) -> dict:
    """A profile at 2 steps of 2 tiny crops per model, everything else as it is."""
    p = yaml.safe_load(yaml.safe_dump(profile))
    p["train"].update(
        {
            "shards": str(shards),
            "steps": 2,
            "batch_size": 2,
            "crop": 64,
            "val_every": 2,
            "val_crop": 64,
            "log_every": 1,
            "workers": 0,
        }
    )
    p["base"]["steps"] = 2
    for rate in p["rates"].values():
        rate.pop("steps", None)
    for section in (p["base"], *p["rates"].values()):
        if "crop" in section:  # a profile's own crops (the validation bases' 128²)
            section["crop"] = 64
    return p


@pytest.mark.parametrize(
    "profile", sorted(p.name for p in (REPO / "profiles").glob("*.yaml")) + ["params.yaml"]
)
def test_profiles_train_two_steps(profile, tmp_path, monkeypatch):
    """Every profile as shipped (models, variants, precision, schedule) trains each variant's
    base and a rate point's fine-tune from it, for 2 steps, with the settings the base and
    train stages derive from it (in this process: a stage process would add seconds of imports)."""
    from grm.pipeline.stage import base_settings, run_settings
    from grm.pipeline.training_run import run_training

    src = REPO / ("params.yaml" if profile == "params.yaml" else f"profiles/{profile}")
    shards = make_shards(tmp_path / "shards", 2, 1, 80, 96)
    params = tiny(yaml.safe_load(src.read_text()), shards)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for variant in params["variants"]:
        settings, where = base_settings(params, variant)
        out = tmp_path / f"{variant}-base"
        result = run_training(
            tmp_path, REPO, params, variant, f"{variant}-base", settings, where, out, kind="base"
        )
        assert result.steps == 2, (profile, variant)
    variant, rate = next(iter(params["variants"])), next(iter(params["rates"]))
    settings, where = run_settings(params, variant, rate)
    settings["init_from"] = str(tmp_path / f"{variant}-base/weights/step-00000002.safetensors")
    result = run_training(
        tmp_path, REPO, params, variant, f"{variant}-{rate}", settings, where, tmp_path / "rate"
    )
    assert result.steps == 2 and result.history, profile
