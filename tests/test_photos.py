"""The committed photos, training (data/photos) and evaluation (data/eval_photos): every
file accounted for and licensed, the two sets disjoint, the held-back package never used."""

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from grm.pipeline.prepare import list_sources

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "data" / "photos"
EVAL_PHOTOS = ROOT / "data" / "eval_photos"
sys.path.insert(0, str(ROOT))


def manifest(folder: Path = PHOTOS) -> list[dict]:
    with open(folder / "MANIFEST.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_manifest_names_every_photo_once_with_its_source_and_licence():
    rows = manifest()
    files = sorted(p.name for p in PHOTOS.iterdir() if p.suffix == ".jpg")
    assert sorted(r["file"] for r in rows) == files
    assert len(files) >= 100
    for r in rows:
        assert r["package"] and r["version"] and r["path"] and r["licence"], r


def test_photos_are_colour_and_downscaled():
    colour = 0
    for r in manifest():
        with Image.open(PHOTOS / r["file"]) as img:
            assert img.mode == "RGB" and max(img.size) <= 640, r["file"]
            small = np.asarray(img.resize((64, 64)), dtype=np.int16)
        colour += int(np.abs(small - small.mean(axis=2, keepdims=True)).mean() > 2)
    assert colour >= 0.95 * len(manifest())


def test_evaluation_photos_are_listed_by_kind_with_source_and_licence():
    rows = manifest(EVAL_PHOTOS)
    files = sorted(str(p.relative_to(EVAL_PHOTOS)) for p in EVAL_PHOTOS.glob("*/*.png"))
    assert sorted(r["file"] for r in rows) == files
    kinds = [r["kind"] for r in rows]
    assert {k: kinds.count(k) for k in set(kinds)} == {"clean": 8, "textured": 8, "repeated": 8}
    for r in rows:
        assert r["file"].startswith(r["kind"] + "/")
        assert r["package"] and r["version"] and r["path"] and r["licence"], r
        with Image.open(EVAL_PHOTOS / r["file"]) as img:
            assert img.mode == "RGB" and sorted(img.size)[1] <= 768 and min(img.size) >= 406
    stems = [Path(f).stem for f in files]
    assert len(stems) == len(set(stems)), "two evaluation photos share a name"


def test_no_held_back_source_and_no_evaluation_source_is_trained_on():
    from grm.pipeline.sample_images import bundled_photos
    from tools.debian import HELD_BACK

    training = {r["package"] for r in manifest()}
    evaluation = {r["package"] for r in manifest(EVAL_PHOTOS)}
    assert not {p for p in training | evaluation if p.startswith(HELD_BACK)}
    assert not training & evaluation
    names = {Path(r["file"]).stem for r in manifest(EVAL_PHOTOS)}
    assert not names & ({Path(r["file"]).stem for r in manifest()} | set(bundled_photos()))


def test_the_default_run_evaluates_every_kind_on_photos_of_the_committed_set():
    import yaml

    prepare = yaml.safe_load((ROOT / "params.yaml").read_text())["prepare"]
    assert prepare["eval_source"] == "data/eval_photos"
    kind = {Path(r["file"]).stem: r["kind"] for r in manifest(EVAL_PHOTOS)}
    chosen = [kind[n] for n in prepare["eval_names"]]
    assert len(chosen) >= 12 and {chosen.count(k) for k in set(chosen)} == {4}


def test_several_sources_are_one_list_and_names_must_not_repeat(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (40, 40)).save(tmp_path / folder / f"{folder}.png")
    keys = [k for k, _ in list_sources(["a", "b"], tmp_path)]
    assert keys == ["a", "b"]
    Image.new("RGB", (40, 40)).save(tmp_path / "b" / "a.png")
    with pytest.raises(ValueError, match="two images are named a"):
        list_sources(["a", "b"], tmp_path)


def test_the_held_back_package_is_refused_before_any_download(tmp_path):
    from tools.debian import unpack

    with pytest.raises(ValueError, match="held back"):
        unpack("mate-backgrounds", tmp_path)
    assert not any(tmp_path.iterdir())
