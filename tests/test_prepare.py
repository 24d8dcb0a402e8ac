"""Streaming prepare: bounded memory, identical shards for any worker count, stable splits."""

import json
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from grm.pipeline.prepare import PrepareSettings, prepare, split_of


def make_photos(folder, names, side=192):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        rng = np.random.default_rng(abs(hash(name)) % 2**32)
        base = rng.integers(0, 256, size=(side // 8, side // 8, 3), dtype=np.uint8)
        Image.fromarray(np.kron(base, np.ones((8, 8, 1), dtype=np.uint8))).save(
            folder / f"{name}.png"
        )
    return folder


def settings(folder, **kw):
    return PrepareSettings(
        **{
            "source": str(folder),
            "eval_names": [],
            "eval_fraction": 0.05,
            "val_fraction": 0.1,
            "min_side": 32,
            "images_per_shard": 16,
            **kw,
        }
    )


def test_shards_identical_with_one_and_two_workers_and_memory_bounded(tmp_path):
    src = make_photos(tmp_path / "src", [f"img{i:04d}" for i in range(240)], side=256)
    tracemalloc.start()
    one = prepare(
        settings(src, workers=1), tmp_path, tmp_path / "s1", tmp_path / "e1", progress=False
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # 240 images × 192 KB decoded = 47 MB if they were all held at once.
    assert peak < 12e6, f"prepare held {peak / 1e6:.1f} MB: it must stream, not collect"
    two = prepare(
        settings(src, workers=2), tmp_path, tmp_path / "s2", tmp_path / "e2", progress=False
    )
    assert one == two and one["found"] == 240 and one["train_shards"] > 2
    i1, i2 = (json.loads((tmp_path / d / "index.json").read_text()) for d in ("s1", "s2"))
    assert i1["sha256"] == i2["sha256"], "shard bytes depend on the number of workers"
    assert i1["images"] == i2["images"]
    # Running again gives the same bytes (no timestamps in the tars).
    again = prepare(
        settings(src, workers=1), tmp_path, tmp_path / "s3", tmp_path / "e3", progress=False
    )
    assert again == one
    assert json.loads((tmp_path / "s3/index.json").read_text())["sha256"] == i1["sha256"]


def test_adding_photos_keeps_every_earlier_photo_in_its_split(tmp_path):
    names = [f"p{i:03d}" for i in range(60)]
    src = make_photos(tmp_path / "src", names, side=64)
    prepare(settings(src, workers=1), tmp_path, tmp_path / "a", tmp_path / "ea", progress=False)
    before = json.loads((tmp_path / "a/index.json").read_text())["images"]
    make_photos(src, [f"new{i:03d}" for i in range(40)], side=64)
    prepare(settings(src, workers=1), tmp_path, tmp_path / "b", tmp_path / "eb", progress=False)
    after = json.loads((tmp_path / "b/index.json").read_text())["images"]
    for split in ("train", "val", "eval"):
        assert set(before[split]) <= set(after[split]), f"an earlier image left {split}"
    assert all(before[s] for s in ("train", "val", "eval"))
    assert split_of("p001", settings(src)) == split_of("p001", settings(src, workers=4))


def test_large_photos_are_downscaled_for_training_not_for_evaluation(tmp_path):
    src = make_photos(tmp_path / "src", [f"big{i}" for i in range(6)], side=512)
    s = settings(src, workers=1, max_side=128, eval_names=["big0"], val_fraction=0.5)
    prepare(s, tmp_path, tmp_path / "s", tmp_path / "e", progress=False)
    from grm.pipeline.shards import read_images, resolve_shards

    sizes = {
        img.shape[:2]
        for split in ("train", "val")
        for _, img in read_images(resolve_shards(str(tmp_path / "s"), split))
    }
    assert sizes == {(128, 128)}
    assert Image.open(tmp_path / "e/big0.png").size == (512, 512)


def test_grayscale_photos_are_kept_or_skipped_for_training_never_for_evaluation(tmp_path):
    src = make_photos(tmp_path / "src", [f"c{i}" for i in range(4)])
    for name in ("g0", "g1"):
        Image.fromarray(np.full((96, 96), 128, np.uint8)).save(src / f"{name}.png")
    kept = prepare(
        settings(src, workers=1, eval_names=["g1"]),
        tmp_path,
        tmp_path / "k",
        tmp_path / "ke",
        progress=False,
    )
    assert kept["converted_grayscale"] == 2 and kept["skipped"] == 0
    skip = prepare(
        settings(src, workers=1, eval_names=["g1"], grayscale="skip"),
        tmp_path,
        tmp_path / "s",
        tmp_path / "se",
        progress=False,
    )
    assert skip["skipped_grayscale"] == 1 and skip["skipped"] == 1 and skip["eval_images"] == 1
    index = json.loads((tmp_path / "s/index.json").read_text())
    assert "g0" not in index["images"]["train"] + index["images"]["val"]
    with pytest.raises(ValueError, match="keep or skip"):
        PrepareSettings.from_dict({"grayscale": "drop"})


def test_an_eval_source_gives_the_photos_and_their_kinds_and_never_trains_on_them(tmp_path):
    src = make_photos(tmp_path / "src", [f"t{i}" for i in range(12)])
    make_photos(tmp_path / "ev" / "clean", ["c1", "c2"])
    make_photos(tmp_path / "ev" / "repeated", ["r1"])
    s = settings(src, workers=1, eval_source="ev", eval_fraction=0.5, val_fraction=0.2)
    counts = prepare(s, tmp_path, tmp_path / "s", tmp_path / "e", progress=False)
    index = json.loads((tmp_path / "s/index.json").read_text())
    assert sorted(index["images"]["eval"]) == ["c1", "c2", "r1"]
    assert len(index["images"]["train"]) + len(index["images"]["val"]) == 12  # no fraction taken
    kinds = json.loads((tmp_path / "e/kinds.json").read_text())
    assert kinds == {"c1": "clean", "c2": "clean", "r1": "repeated"}
    assert counts["eval_clean"] == 2 and counts["eval_repeated"] == 1
    named = settings(src, workers=1, eval_source="ev", eval_names=["c2", "r1"])
    prepare(named, tmp_path, tmp_path / "s2", tmp_path / "e2", progress=False)
    assert sorted(p.stem for p in (tmp_path / "e2").glob("*.png")) == ["c2", "r1"]
    with pytest.raises(ValueError, match="not found in"):
        prepare(settings(src, eval_source="ev", eval_names=["t1"]), tmp_path, *_outs(tmp_path))
    with pytest.raises(FileNotFoundError, match="eval_source: folder not found"):
        prepare(settings(src, eval_source="nowhere"), tmp_path, *_outs(tmp_path))
    make_photos(tmp_path / "ev" / "clean", ["t3"])  # a training photo's name
    with pytest.raises(ValueError, match="also training photos: \\['t3'\\]"):
        prepare(settings(src, eval_source="ev"), tmp_path, *_outs(tmp_path))


def _outs(tmp_path):
    return tmp_path / "s9", tmp_path / "e9"
