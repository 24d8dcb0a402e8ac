"""The training stream: resuming at step N is computed, not replayed, and lands on the same
batches."""

import numpy as np
import pytest
import torch

from conftest import make_shards
from grm.pipeline import shards as shards_module
from grm.pipeline.shards import resolve_shards, shrink, train_loader


def take(it, n):
    return [next(it) for _ in range(n)]


def test_resume_at_step_n_decodes_one_window_not_n_batches(tmp_path, monkeypatch):
    decoded = []
    real_decode = shards_module.decode_png
    monkeypatch.setattr(
        shards_module, "decode_png", lambda png: decoded.append(1) or real_decode(png)
    )
    shards = make_shards(tmp_path, 6, 1, 48, 48)
    urls = resolve_shards(str(shards), "train")
    kw = dict(crop=32, batch_size=3, crops_per_image=2, shuffle_buffer=4, seed=7)
    straight = take(train_loader(urls, **kw), 40)  # 120 crops = 10 epochs of 6 images
    for n in (1, 5, 17, 39):
        decoded.clear()
        resumed = take(train_loader(urls, start_step=n, **kw), 1)[0]
        assert torch.equal(resumed[0], straight[n][0]) and resumed[1] == straight[n][1], f"step {n}"
        assert len(decoded) <= 4, f"resuming at step {n} decoded {len(decoded)} images"
    keys = [k for _, ks in straight[:4] for k in ks]  # epoch 1: each image twice (2 crops)
    assert sorted(keys) == sorted(f"img{i:02d}" for i in range(6) for _ in range(2))


def test_two_workers_resume_exactly_too(tmp_path):
    shards = make_shards(tmp_path, 4, 1, 40, 40)
    urls = resolve_shards(str(shards), "train")
    kw = dict(crop=32, batch_size=2, crops_per_image=1, shuffle_buffer=2, seed=0, workers=2)
    straight = take(train_loader(urls, **kw), 9)
    for n in (3, 6):
        resumed = take(train_loader(urls, start_step=n, **kw), 3)
        for a, b in zip(resumed, straight[n : n + 3]):
            assert torch.equal(a[0], b[0]) and a[1] == b[1]


def test_shrunk_crops_hold_more_of_the_photo_and_resume_exactly(tmp_path):
    """train.min_scale: a crop of a shrunk photo spans more of it; the stream stays a function
    of the step, and at min_scale 1 it is the stream without the setting."""
    ramp = np.tile(np.arange(64, dtype=np.uint8)[None, :, None] * 4, (64, 1, 3))
    half = shrink(ramp, 0.5)
    assert half.shape == (32, 32, 3)
    assert int(half[0].max()) - int(half[0].min()) > 200  # the whole ramp in half the pixels
    shards = make_shards(tmp_path, 4, 1, 96, 96)
    urls = resolve_shards(str(shards), "train")
    kw = dict(crop=32, batch_size=2, crops_per_image=2, shuffle_buffer=4, seed=3)
    plain = take(train_loader(urls, **kw), 6)
    same = take(train_loader(urls, min_scale=1.0, **kw), 6)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(plain, same))
    shrunk = take(train_loader(urls, min_scale=0.4, **kw), 6)
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(plain, shrunk))
    resumed = take(train_loader(urls, min_scale=0.4, start_step=4, **kw), 2)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(resumed, shrunk[4:]))
    with pytest.raises(ValueError, match="min_scale"):
        train_loader(urls, min_scale=0.0, **kw)
