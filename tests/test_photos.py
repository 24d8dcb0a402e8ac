"""The default training photos: every file accounted for, licensed, and disjoint from
what the benchmarks measure on."""

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from grm.pipeline.prepare import list_sources

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "data" / "photos"
sys.path.insert(0, str(ROOT))


def manifest() -> list[dict]:
    with open(PHOTOS / "MANIFEST.tsv", newline="") as f:
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


def test_no_held_back_or_benchmark_source_is_used():
    from benchmarks.bench_quality import CLEAN, UNSEEN
    from tools.debian import HELD_BACK

    packages = {r["package"] for r in manifest()}
    assert not {p for p in packages if p.startswith(HELD_BACK)}
    assert not packages & set(CLEAN)
    assert not packages & {spec.split("==")[0] for spec in UNSEEN}


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
