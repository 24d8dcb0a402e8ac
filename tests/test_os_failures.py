"""When the machine fails under the pipeline: one line, exit 1, nothing lost, a rerun resumes.

Real failures, not mocks: a small tmpfs fills up, a bind mount is made read-only, shards
are removed and cut short while a run reads them. Mounting needs root (as on CI); a
machine where it is refused skips those tests and says why.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, make_shards
from test_resume import env, write_params

from grm.checksum import sha256_file


def _mount(*args: str) -> None:
    r = subprocess.run(["mount", *args], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount here ({r.stderr.strip()}): these failures need real mounts")


@pytest.fixture
def mounts():
    """mount(...) as the test asks; everything it mounted is unmounted afterwards."""
    done: list[Path] = []

    def mount(*args: str) -> None:
        _mount(*args)
        done.append(Path(args[-1]))

    yield mount
    for p in reversed(done):
        subprocess.run(["umount", "-l", str(p)], capture_output=True)


def small_disk(mount, path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))


def grow(path: Path, size: str) -> None:
    _mount("-o", f"remount,size={size}", str(path))


def read_only(mount, path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    mount("--bind", str(path), str(path))
    _mount("-o", "remount,bind,ro", str(path))


def stage(tmp: Path, *args: str, umask: int = 0o022) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args, "--params", str(tmp / "params.yaml")],
        cwd=tmp,
        env=dict(env(tmp), PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=lambda: os.umask(umask),
    )


def one_line_failure(r: subprocess.CompletedProcess) -> str:
    """The failure's line: exit 1, no traceback, the last thing on stderr."""
    assert r.returncode == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("stage error: "), r.stderr[-3000:]
    return last[len("stage error: ") :]


def last_state(run: Path) -> int:
    states = sorted(p for p in (run / "state").glob("step-*") if not p.name.endswith(".tmp"))
    return json.loads((states[-1] / "trainer.json").read_text())["step"]


def modes(folder: Path) -> set[int]:
    return {p.stat().st_mode & 0o777 for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Shards with their checksums in index.json, as the prepare stage writes them."""
    root = make_shards(tmp_path_factory.mktemp("shards"), 4, 1, 72, 72)
    index = json.loads((root / "index.json").read_text())
    index["sha256"] = {p.name: sha256_file(p) for p in root.glob("*.tar")}
    (root / "index.json").write_text(json.dumps(index))
    return root


def test_disk_full_at_a_checkpoint_keeps_the_last_state_then_resumes(shards, tmp_path, mounts):
    run = tmp_path / "data/checkpoints/rates/grm-r"
    # One checkpoint of the tiny model (weights 0.75 MB + state 2.3 MB) fits, two do not.
    small_disk(mounts, run, "4500k")
    write_params(tmp_path / "params.yaml", shards, steps=10)
    line = one_line_failure(stage(tmp_path, "stages.train", "grm", "r"))
    assert line == (
        "disk full while saving step 10 of grm-r to data/checkpoints/rates/grm-r; "
        "the last complete state is step 5; free space and rerun to resume"
    )
    assert last_state(run) == 5
    assert not list(run.glob("state/*.tmp")), "half-written state left behind"
    assert not (run / "weights/step-00000010.safetensors").exists()

    grow(run, "64m")
    r = stage(tmp_path, "stages.train", "grm", "r", umask=0o027)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed grm-r from step 5" in r.stderr
    assert last_state(run) == 10
    # Checkpoints respect the umask like every other output (safetensors alone writes 0600).
    assert modes(run / "state/step-00000010") <= {0o640, 0o750}
    assert (run / "weights/step-00000010.safetensors").stat().st_mode & 0o777 == 0o640


def test_run_folder_on_a_mount_point_sets_an_old_run_aside_inside_it(shards, tmp_path, mounts):
    """A scratch disk mounted at the run folder cannot be renamed: the old run waits inside
    it while a new run starts, and comes back when the old settings do."""
    run = tmp_path / "data/checkpoints/rates/grm-r"
    small_disk(mounts, run, "64m")
    write_params(tmp_path / "params.yaml", shards, steps=5)
    assert stage(tmp_path, "stages.train", "grm", "r").returncode == 0
    finished = (run / "weights/step-00000005.safetensors").read_bytes()

    # A new setting that fails before its first checkpoint: the old run must survive it.
    write_params(tmp_path / "params.yaml", shards, steps=5, max_bad_steps=1)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["rates"]["r"]["lmbda"] = float("nan")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    r = stage(tmp_path, "stages.train", "grm", "r")
    assert "changed since the checkpoint" in r.stderr and "Busy" not in r.stderr
    assert "non-finite" in one_line_failure(r)
    assert (run / ".previous/weights/step-00000005.safetensors").read_bytes() == finished

    write_params(tmp_path / "params.yaml", shards, steps=5, max_bad_steps=1)
    r = stage(tmp_path, "stages.train", "grm", "r")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming the run set aside" in r.stderr
    assert not (run / ".previous").exists()
    assert (run / "weights/step-00000005.safetensors").read_bytes() == finished
    assert last_state(run) == 5


def test_read_only_models_folder_fails_the_export_in_one_line(shards, tmp_path, mounts):
    write_params(tmp_path / "params.yaml", shards, steps=5)
    assert stage(tmp_path, "stages.train", "grm", "r").returncode == 0
    models = tmp_path / "data/models"
    read_only(mounts, models)
    line = one_line_failure(stage(tmp_path, "stages.export", "grm", "r"))
    assert line == (
        "read-only file system while exporting grm-r to data/models/grm-r.safetensors; "
        "the checkpoints in data/checkpoints/rates/grm-r are intact; make it writable and rerun"
    )
    assert not list(models.iterdir())
    _mount("-o", "remount,bind,rw", str(models))
    r = stage(tmp_path, "stages.export", "grm", "r")
    assert r.returncode == 0, r.stderr[-3000:]
    assert (models / "grm-r.safetensors").stat().st_mode & 0o777 == 0o644


def test_shards_removed_or_cut_short_mid_run(shards, tmp_path):
    """A shard deleted and another truncated while the run reads them (in a loader worker):
    one line naming the shard and the last state; restored, the run resumes from it."""
    write_params(
        tmp_path / "params.yaml", shards, steps=400, workers=1, crops_per_image=4, shuffle_buffer=4
    )
    saved = {p: p.read_bytes() for p in sorted(shards.glob("train-*.tar"))}
    gone, cut = list(saved)[1:3]
    proc = subprocess.Popen(
        [sys.executable, "-m", "stages.train", "grm", "r", "--params", "params.yaml"],
        cwd=tmp_path,
        env=dict(env(tmp_path), PYTHONPATH=str(REPO)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run = tmp_path / "data/checkpoints/rates/grm-r"
        deadline = time.time() + 300
        while time.time() < deadline and not (run / "state/step-00000010").is_dir():
            time.sleep(0.01)
        gone.unlink()
        cut.write_bytes(saved[cut][: len(saved[cut]) // 2])
        _, err = proc.communicate(timeout=600)
    finally:
        for p, data in saved.items():
            p.write_bytes(data)
    r = subprocess.CompletedProcess(proc.args, proc.returncode, "", err)
    line = one_line_failure(r)
    kept = last_state(run)
    assert 10 <= kept < 400
    assert line.startswith("shard "), line
    assert any(
        f"shard {p} is missing" in line or f"shard {p} is truncated" in line for p in (gone, cut)
    )
    assert " while training grm-r at step " in line
    assert line.endswith(
        f"; the last complete state is step {kept}; restore the shards (dvc repro prepare "
        "rebuilds them) and rerun to resume"
    )
    r = stage(tmp_path, "stages.train", "grm", "r")
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"resumed grm-r from step {kept}" in r.stderr


def test_codec_cli_names_the_output_it_could_not_write(tmp_path, mounts, photo):
    """Disk full and a read-only folder: one line naming the input and the output, exit 1,
    no partial file; the same command succeeds once the cause is gone."""
    from grm.model import GRM
    from grm.model_file import save_model
    from PIL import Image

    save_model(GRM("tiny"), tmp_path / "m.safetensors", name="tiny")
    Image.fromarray(photo[:64, :64]).save(tmp_path / "p.png")
    grm = [str(Path(sys.executable).parent / "grm")]
    full = tmp_path / "full"
    small_disk(mounts, full, "4k")
    (full / "filler").write_bytes(bytes(4096))

    def cli(*args):
        return subprocess.run([*grm, *args], cwd=tmp_path, capture_output=True, text=True)

    r = cli("compress", "p.png", "full/p.grm", "--model", "m.safetensors")
    assert r.returncode == 1 and r.stderr.strip() == (
        "grm: error: p.png: disk full while writing full/p.grm; free space and rerun"
    ), r.stderr
    assert sorted(p.name for p in full.iterdir()) == ["filler"]
    (full / "filler").unlink()
    assert cli("compress", "p.png", "full/p.grm", "--model", "m.safetensors").returncode == 0

    read_only(mounts, tmp_path / "ro")
    r = cli("decompress", "full/p.grm", "ro/p.png", "--model", "m.safetensors")
    assert r.returncode == 1 and r.stderr.strip() == (
        "grm: error: full/p.grm: read-only file system while writing ro/p.png; "
        "make it writable and rerun"
    ), r.stderr
    assert not list((tmp_path / "ro").iterdir())


def test_disk_full_while_writing_shards_is_one_line_and_a_rerun_completes(tmp_path, mounts):
    from test_prepare import make_photos

    make_photos(tmp_path / "photos", [f"p{i:02d}" for i in range(12)], side=256)
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump(
            {
                "prepare": {
                    "source": "photos",
                    "eval_fraction": 0.2,
                    "val_fraction": 0.3,
                    "images_per_shard": 2,
                },
                "train": {},
                "rates": {"r": {"lmbda": 0.01}},
            }
        )
    )
    small_disk(mounts, tmp_path / "data/shards", "64k")
    line = one_line_failure(stage(tmp_path, "stages.prepare"))
    assert line == (
        "disk full while writing the shards to data/shards; the source photos are untouched; "
        "free space and rerun"
    )
    grow(tmp_path / "data/shards", "64m")
    r = stage(tmp_path, "stages.prepare")
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((tmp_path / "data/prepare_summary.json").read_text())["found"] == 12
