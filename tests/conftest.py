import os

# `make test` runs test files side by side (pytest-xdist): threads that wait passively leave
# the cores to the other workers. Set before torch loads OpenMP; a test that wants ACTIVE says so.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path

import numpy as np
import pytest
import torch

from grm.image_io import read_image, to_tensor
from grm.pipeline.loss import RateDistortionLoss
from grm.model import GRM
from grm.model_file import load_model, save_model
from grm.pipeline.sample_images import bundled_photos

REPO = Path(__file__).resolve().parents[1]
# Every page whose shell lines are a contract (tests/test_readme_blocks.py): the READMEs and
# the documentation site.
READMES = [REPO / "README.md", REPO / "data/README.md", *sorted((REPO / "docs").rglob("*.md"))]


def make_shards(root, n_train: int, n_val: int, h: int, w: int):
    """One random image per shard, with an index.json like the prepare stage writes."""
    import json
    from grm.pipeline.shards import write_shards

    rng = np.random.default_rng(0)
    images = [
        (f"img{i:02d}", rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))
        for i in range(n_train + n_val)
    ]
    train = write_shards(images[:n_train], root, "train", 1)
    val = write_shards(images[n_train:], root, "val", 1)
    (root / "index.json").write_text(
        json.dumps({"splits": {"train": train, "val": val}, "sha256": {}})
    )
    return root


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    arr, _ = read_image(bundled_photos()["astronaut"])
    return arr


def quick_train(config, photo: np.ndarray, steps: int = 300, seed: int = 0) -> GRM:
    """A few hundred steps on crops of one photo: enough for realistic statistics."""
    torch.manual_seed(seed)
    x = to_tensor(photo)
    model = GRM(config)
    main = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    aux = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    opt, aux_opt = torch.optim.Adam(main, 3e-3), torch.optim.Adam(aux, 1e-2)
    crit = RateDistortionLoss(0.01)
    h, w = x.shape[-2:]
    for _ in range(steps):
        ij = torch.stack([torch.randint(0, h - 64, (8,)), torch.randint(0, w - 64, (8,))], 1)
        batch = torch.cat([x[..., i : i + 64, j : j + 64] for i, j in ij.tolist()])
        loss = crit(model(batch), batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        aux_loss = model.aux_loss()
        aux_opt.zero_grad()
        aux_loss.backward()
        aux_opt.step()
    model.eval()
    model.update(force=True)
    return model


@pytest.fixture(scope="session")
def trained_model_path(tmp_path_factory, photo):
    model = quick_train("tiny", photo)
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    save_model(model, path, name="tiny-test")
    return path


@pytest.fixture(scope="session")
def trained(trained_model_path):
    return load_model(trained_model_path)


import sys as _sys  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

_sys.path.insert(0, str(_Path(__file__).parent))  # tests' own helper modules


def pytest_collection_modifyitems(items):
    """tests/test_pipeline.py (~17 min of DVC runs) first: under `make test`'s `--dist loadfile
    --no-loadscope-reorder` one worker starts it at once while the others take the rest,
    instead of it starting half-way through the run and ending alone."""
    items.sort(key=lambda item: item.path.name != "test_pipeline.py")  # stable: the rest in order
