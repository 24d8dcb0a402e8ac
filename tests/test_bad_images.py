"""Bad images into the CLI and the prepare stage: clear messages, right exit codes, nothing lost."""

import subprocess
import sys

import pytest
from PIL import Image

from bad_images import make_bad_images
from grm.codec import decode_bytes
from grm.pipeline.prepare import PrepareSettings, prepare


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    return make_bad_images(tmp_path_factory.mktemp("bad"))


def grm(*args):
    return subprocess.run(
        [sys.executable, "-m", "grm.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    "name",
    [
        "truncated.jpg",
        "truncated.png",
        "empty.png",
        "text.png",
        "bomb.png",
        "cmyk.jpg",
        "gray16.png",
        "palette.png",
        "rgba.png",
        "exif.jpg",
        "good1.png",
        "one.png",
        "line.png",
    ],
)
def test_cli_on_awkward_images(bad, trained, trained_model_path, tmp_path, name):
    outcome, path = bad[name]
    out = tmp_path / "out.grm"
    r = grm("compress", path, out, "--model", trained_model_path)
    assert "Traceback" not in r.stderr
    if outcome in ("unreadable", "bomb"):
        assert r.returncode == 1, r.stderr
        assert r.stderr.startswith("grm: error:") and len(r.stderr.strip().splitlines()) == 1
        assert ("decompression bomb" in r.stderr) == (outcome == "bomb")
        assert not out.exists()
        return
    assert r.returncode == 0, r.stderr
    assert ("note:" in r.stderr) == (outcome == "converted")
    rgb, _ = decode_bytes(trained, out.read_bytes())
    with Image.open(path) as img:
        w, h = img.size
    if name == "exif.jpg":
        w, h = h, w  # displayed upright
    assert rgb.shape == (h, w, 3)


def test_prepare_keeps_going_and_counts_everything(bad, tmp_path):
    folder = next(iter(bad.values()))[1].parent
    settings = PrepareSettings(
        source=str(folder), eval_names=["good3"], val_fraction=0.5, min_side=8, images_per_shard=2
    )
    counts = prepare(settings, tmp_path, tmp_path / "shards", tmp_path / "eval")
    expected = {
        k: sum(1 for o, _ in bad.values() if o == k)
        for k in ("ok", "converted", "unreadable", "bomb", "tiny")
    }
    assert counts["found"] == len(bad)
    assert counts["skipped_unreadable"] == expected["unreadable"] + expected["bomb"]
    assert counts["skipped_too_small"] == expected["tiny"]
    used = counts["train_images"] + counts["val_images"] + counts["eval_images"]
    assert used == expected["ok"] + expected["converted"]
    assert (
        counts["converted_16bit"] == 1
        and counts["converted_alpha"] == 1
        and counts["converted_exif"] == 1
    )


def test_concurrent_writers_never_leave_half_a_file(trained_model_path, photo, tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(photo[:128, :128]).save(src)
    out = tmp_path / "same.grm"
    cmd = [
        sys.executable,
        "-m",
        "grm.cli",
        "compress",
        str(src),
        str(out),
        "--model",
        str(trained_model_path),
    ]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(3)
    ]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    r = grm("decompress", out, tmp_path / "o.png", "--model", trained_model_path)
    assert r.returncode == 0, r.stderr
    assert [
        p.name for p in tmp_path.iterdir() if p.name.startswith(".")
    ] == []  # no temp files left
