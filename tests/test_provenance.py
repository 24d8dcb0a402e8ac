"""dvc.yaml lists the code each stage runs and only the params that change its result."""

import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from grm.pipeline.provenance import code_digest, stage_sources
from grm.pipeline.train import BOOKKEEPING, TrainSettings, training_code_digest
from conftest import REPO

DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def stage_deps(stage: dict) -> set[str]:
    body = stage.get("do", stage)
    return {d for d in body["deps"] if isinstance(d, str)}


@pytest.mark.parametrize("name", sorted(DVC))
def test_stage_deps_cover_the_code_the_stage_imports(name):
    script = f"stages/{name}.py"
    needed = {p.as_posix() for p in stage_sources(REPO, script)}
    assert script in needed and len(needed) > 2
    missing = needed - stage_deps(DVC[name])
    assert not missing, f"dvc.yaml stage {name!r} runs but does not depend on {sorted(missing)}"


def test_import_walk_sees_function_level_imports():
    # stages/evaluate.py imports grm.pipeline.evaluation inside main()
    assert Path("grm/pipeline/evaluation.py") in stage_sources(REPO, "stages/evaluate.py")
    # the classic codecs never run the model: a model edit must not rerun JPEG
    assert Path("grm/model.py") not in stage_sources(REPO, "stages/classic.py")


def test_train_params_are_the_settings_that_decide_the_weights():
    listed = {p for p in DVC["train"]["params"] if p.startswith("train.")}
    defining = {
        f"train.{f.name}"
        for f in fields(TrainSettings)
        if f.name not in BOOKKEEPING and f.name not in ("arch", "lmbda", "init_from")
    }
    assert listed == defining | {"train.shards"}
    # the base overrides steps and lr_drop_at (its own section): editing the rate points'
    # values must not retrain it
    base = {p for p in DVC["base"]["params"] if p.startswith("train.")}
    assert base == listed - {"train.steps", "train.lr_drop_at"}


def test_editing_a_model_source_changes_the_training_key(tmp_path):
    copy = tmp_path / "repo"
    for item in ("stages", "grm"):
        shutil.copytree(REPO / item, copy / item, ignore=shutil.ignore_patterns("__pycache__"))
    before = training_code_digest(copy)
    assert before == training_code_digest(REPO)
    for recording in ("tracking.py", "mlflow_store.py"):
        f = copy / "grm/pipeline" / recording
        f.write_text(f.read_text() + "\n# bookkeeping only\n")
        assert training_code_digest(copy) == before, f"{recording} records, it must not retrain"
    model = copy / "grm/model.py"
    classic = code_digest(copy, "stages/classic.py")
    model.write_text(model.read_text() + "\n# an edit\n")
    assert training_code_digest(copy) != before
    assert code_digest(copy, "stages/classic.py") == classic


def test_no_stage_script_shadows_a_standard_library_module():
    """`python stages/X.py` (and accelerate / torchrun launching it by path) puts stages/
    first on sys.path: a stages/select.py once replaced the `select` subprocess imports."""
    names = {p.stem for p in (REPO / "stages").glob("*.py")}
    assert not names & set(sys.stdlib_module_names)


@pytest.mark.parametrize("form", ["module", "path"])
@pytest.mark.parametrize("name", sorted(DVC))
def test_stage_help_prints_usage_and_does_nothing(name, form, tmp_path):
    launch = ["-m", f"stages.{name}"] if form == "module" else [str(REPO / "stages" / f"{name}.py")]
    r = subprocess.run(
        [sys.executable, *launch, "--help"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and "usage:" in r.stdout, r.stderr[-2000:]
    assert list(tmp_path.iterdir()) == [], "--help must not write anything"


@pytest.mark.parametrize(
    "path",
    ["params.yaml", *sorted(str(p.relative_to(REPO)) for p in (REPO / "profiles").glob("*.yaml"))],
)
def test_every_profile_is_complete_and_valid(path):
    """`cp profiles/X.yaml params.yaml && dvc repro` must not fail on a missing or unknown key."""
    from grm.pipeline.prepare import PrepareSettings
    from grm.pipeline.stage import base_settings, run_settings

    params = yaml.safe_load((REPO / path).read_text())
    PrepareSettings.from_dict(params["prepare"])
    listed = {p.split(".", 1)[1] for p in DVC["train"]["params"] if p.startswith("train.")}
    assert listed <= set(params["train"]), f"{path} lacks {sorted(listed - set(params['train']))}"
    for variant in params["variants"]:
        TrainSettings.from_dict(base_settings(params, variant)[0])
        for rate in params["rates"]:
            TrainSettings.from_dict(run_settings(params, variant, rate)[0])
    assert set(params["variants"]) <= set(params["report"]["labels"]) | {"grm"}


def test_the_codec_modules_import_without_a_cycle():
    """Imports inside grm/, function-level ones included, form a DAG: layers point one way."""
    import ast

    graph = {}
    for f in sorted((REPO / "grm").glob("*.py")):
        deps = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps |= {node.module} if node.module else {a.name for a in node.names}
            elif (
                isinstance(node, ast.ImportFrom)
                and node.level == 0
                and (node.module or "").startswith("grm.")
            ):
                deps.add(node.module.split(".")[1])
        graph[f.stem] = {d.split(".")[0] for d in deps}
    done, path = set(), []

    def visit(mod):
        assert mod not in path, f"import cycle: {' -> '.join(path[path.index(mod) :] + [mod])}"
        if mod in done or mod not in graph:
            return
        path.append(mod)
        for dep in sorted(graph[mod]):
            visit(dep)
        path.pop()
        done.add(mod)

    for mod in graph:
        visit(mod)
