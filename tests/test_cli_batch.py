"""The codec as a tool: model lookup, batches, stdin/stdout, and a bare install without the
pipeline."""

import os
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from conftest import REPO

# Pipeline-only packages (compressai itself brings torch, tqdm, matplotlib, pytorch-msssim).
PIPELINE_ONLY = (
    "dvc",
    "mlflow",
    "accelerate",
    "webdataset",
    "sklearn",
    "skimage",
    "bjontegaard",
    "yaml",
    "pillow_heif",
    "pillow_jxl",
    "braceexpand",
)


def grm(*args, cwd=None, stdin=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "grm", *map(str, args)],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory, trained_model_path):
    """A model folder as the pipeline leaves it: grm-q1 and a peer at the same point."""
    d = tmp_path_factory.mktemp("models")
    from grm.model_file import load_model, save_model

    lm = load_model(trained_model_path)
    save_model(lm.model, d / "grm-q1.safetensors", name="grm-q1")
    save_model(lm.model, d / "other-q1.safetensors", name="other-q1")
    return d


@pytest.fixture(scope="module")
def images(tmp_path_factory, photo):
    d = tmp_path_factory.mktemp("images")
    for i in range(3):
        Image.fromarray(photo[40 * i : 40 * i + 48, :64]).save(d / f"p{i}.png")
    return d


def test_batch_with_folder_and_lookup_by_hash(models, images, tmp_path):
    (images / "broken.png").write_bytes(b"not a png")
    try:
        r = grm("compress", images, "-o", tmp_path / "coded", "--rate", "q1", "--models", models)
    finally:
        (images / "broken.png").unlink()
    assert r.returncode == 1, "a failed file must make the exit status non-zero"
    err = r.stderr.decode()
    assert err.count("grm: error:") == 1 and "broken.png" in err and "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "coded").iterdir()) == ["p0.grm", "p1.grm", "p2.grm"]
    assert "3 of 4 files" in r.stdout.decode() and "mean" in r.stdout.decode()
    # No --model: each file names its model by hash; found in $GRM_MODELS.
    r = grm(
        "decompress", tmp_path / "coded", "-o", tmp_path / "out", env={"GRM_MODELS": str(models)}
    )
    assert r.returncode == 0, r.stderr.decode()
    for i in range(3):
        assert np.asarray(Image.open(tmp_path / "out" / f"p{i}.png")).shape == (48, 64, 3)
    # Not found: says where it looked.
    empty = tmp_path / "empty"
    empty.mkdir()
    r = grm("decompress", tmp_path / "coded/p0.grm", tmp_path / "x.png", "--models", empty)
    assert (
        r.returncode == 1 and f"in {empty}" in r.stderr.decode() and "grm-q1" in r.stderr.decode()
    )


def test_two_different_candidates_are_an_error_identical_copies_are_not(models, images, tmp_path):
    from grm.model_file import load_model, save_model

    lm = load_model(models / "grm-q1.safetensors")
    second = tmp_path / "second"
    shutil.copytree(models, second)
    both_folders = ("--rate", "q1", "--models", models, "--models", second)
    r = grm("compress", images / "p0.png", tmp_path / "a.grm", *both_folders)
    assert r.returncode == 0, r.stderr.decode()  # the same file twice is one model
    with __import__("torch").no_grad():
        next(lm.model.parameters()).add_(0.01)
    save_model(lm.model, second / "grm-q1.safetensors", name="grm-q1")
    r = grm("compress", images / "p0.png", tmp_path / "b.grm", *both_folders)
    assert r.returncode == 1 and "2 different models match --rate q1" in r.stderr.decode()
    r = grm("compress", images / "p0.png", tmp_path / "c.grm", "--rate", "q9", "--models", models)
    assert r.returncode == 1 and "no grm model at rate point 'q9'" in r.stderr.decode()


def test_stdin_stdout_bpp_target_info_and_version(models, images, tmp_path):
    src = (images / "p1.png").read_bytes()
    r = grm("compress", "-", "-", "--bpp", "0.5", "--models", models, stdin=src)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout[:4] == b"GRMc" and b"with grm-q1" in r.stderr
    (tmp_path / "s.grm").write_bytes(r.stdout)
    r = grm("decompress", "-", "-", "--models", models, stdin=r.stdout)
    assert r.returncode == 0 and r.stdout[:4] == b"\x89PNG"
    r = grm("info", tmp_path / "s.grm", "--models", models)
    out = r.stdout.decode()
    assert (
        r.returncode == 0 and "matches" in out and "decode order:" in out and "model config:" in out
    )
    assert "entropy model: integer/1, stored" in out
    r = grm("info", tmp_path / "s.grm", "--model", models / "other-q1.safetensors")
    assert r.returncode == 1 and "DOES NOT match" in r.stdout.decode()
    r = grm("--version")
    assert r.returncode == 0 and r.stdout.decode().startswith("grm ")
    # a reader that stops early (`grm info x.grm | head -1`) is not an error
    r = subprocess.run(
        f"{shlex.join([sys.executable, '-m', 'grm'])} info {tmp_path / 's.grm'} --models {models} "
        "| head -1",
        shell=True,
        capture_output=True,
        timeout=120,
    )
    assert r.stdout.decode().startswith("file:") and b"error" not in r.stderr, r.stderr.decode()


def test_bare_codec_round_trips_without_pipeline_packages(trained_model_path, images, tmp_path):
    """The codec imports none of the pipeline's packages: each is replaced by one that refuses to
    load."""
    stubs = tmp_path / "stubs"
    for name in PIPELINE_ONLY:
        (stubs / name).mkdir(parents=True)
        (stubs / name / "__init__.py").write_text(
            f"raise ImportError('the codec imported {name}')\n"
        )
    env = {"PYTHONPATH": f"{stubs}{os.pathsep}{REPO}"}
    r = grm(
        "compress", images / "p2.png", tmp_path / "x.grm", "--model", trained_model_path, env=env
    )
    assert r.returncode == 0, r.stderr.decode()
    r = grm(
        "decompress", tmp_path / "x.grm", tmp_path / "x.png", "--model", trained_model_path, env=env
    )
    assert r.returncode == 0, r.stderr.decode()
    assert np.asarray(Image.open(tmp_path / "x.png")).shape == (48, 64, 3)
    # and nothing in the codec reaches into the pipeline
    for f in (REPO / "grm").glob("*.py"):
        assert "pipeline" not in "".join(
            line for line in f.read_text().splitlines(True) if "import" in line
        ), f


def test_a_folder_and_a_new_path_code_into_that_path(tmp_path):
    """`grm compress photos/ coded/` (no -o) must not write .grm files into photos/."""
    from grm.cli_plan import plan

    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(b"")
    jobs = plan([str(photos), str(tmp_path / "coded")], None, {".png"}, ".grm")
    assert [j.dst for j in jobs] == [str(tmp_path / "coded" / "a.grm")]
    assert [j.dst for j in plan([str(photos)], None, {".png"}, ".grm")] == [str(photos / "a.grm")]


def test_a_folder_is_coded_by_worker_processes(models, photo, tmp_path):
    """-j 2: two worker processes share the files; every good file is written and decodes,
    a bad one is one line, the summary counts both, the exit status is 1."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(8):
        Image.fromarray(photo[16 * i : 16 * i + 48, :64]).save(src / f"p{i}.png")
    (src / "bad.png").write_bytes(b"not a png")
    r = grm("compress", src, "-o", tmp_path / "out", "--rate", "q1", "--models", models, "-j", "2")
    assert r.returncode == 1, r.stderr.decode()
    err = r.stderr.decode()
    assert "grm: error: " in err and "bad.png" in err and "Traceback" not in err
    assert "compress: 8 of 9 files" in r.stdout.decode()
    r = grm("decompress", tmp_path / "out", "-o", tmp_path / "dec", "--models", models, "-j", "2")
    assert r.returncode == 0, r.stderr.decode()
    decoded = sorted(p.name for p in (tmp_path / "dec").rglob("*.png"))
    assert decoded == [f"p{i}.png" for i in range(8)]
    for i in range(8):
        img = np.asarray(Image.open(tmp_path / "dec" / f"p{i}.png"))
        assert img.shape == (48, 64, 3)
