"""Files written today decode with every later grm: the ŷ coder against frozen bytes.

tests/data/golden_coder.npz holds an integer entropy model (int16 weights, integer
tables: what a model file stores), a latent ŷ and ẑ, and the bytes grm wrote for them in
both decode orders. The coder is integer arithmetic throughout, so these bytes must come
out on every machine, thread count and torch version, and from every later version of
the code: a speed-up that changed one table entry would fail here, not in a user's
archive. Regenerate (``python tests/test_format_golden.py``) only for a deliberate
format change, together with a new container.VERSION.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from grm import integer_ops
from grm.integer_model import IntegerEntropyModel
from grm.latent_coder import MAX_SYMBOL, decode_latents, encode_latents
from grm.model import GRM

GOLDEN = Path(__file__).parent / "data" / "golden_coder.npz"
ORDERS = ("wavefront", "raster")


def _coder(config: dict, tensors: dict, order: str) -> IntegerEntropyModel:
    """The stored integer model, laid out for a GRM of this config and decode order."""
    return IntegerEntropyModel.from_tensors(tensors, GRM({**config, "decode_order": order}))


def _load():
    with np.load(GOLDEN, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    config = json.loads(str(data.pop("config")))
    y, z = (torch.from_numpy(data.pop(k)).float() for k in ("y", "z"))
    streams = {o: data.pop(f"stream.{o}").tobytes() for o in ORDERS}
    tensors = {k: torch.from_numpy(v) for k, v in data.items()}
    return config, tensors, y, z, streams


@pytest.mark.parametrize("products", ["float64", "int8"])
def test_frozen_files_decode_and_reencode_to_the_same_bytes(products, monkeypatch):
    if products == "int8":  # what paper-width layers use on a CPU, here on every layer
        if not integer_ops.INT8:
            pytest.skip("this torch has no int8 matrix product")
        monkeypatch.setattr(integer_ops, "INT8_MIN_WEIGHTS", 0)
    config, tensors, y, z, streams = _load()
    assert int(y.abs().max()) == MAX_SYMBOL and (y == 0).any()  # escapes and the common case
    for order in ORDERS:
        coder = _coder(config, tensors, order)
        assert torch.equal(decode_latents(coder, streams[order], z), y), order
        assert encode_latents(coder, y, z) == streams[order], order


def write():
    """Freeze the current coder's output (a deliberate format change only)."""
    torch.manual_seed(7)
    model = GRM({"base": "tiny", "N": 8, "M": 12, "hidden": 24}).eval()  # small file, every path
    config = model.export_config()
    tensors = model.integer_model().tensors()
    rng = np.random.RandomState(7)  # numpy's legacy generator: stable forever
    m = config["M"]
    y = np.round(rng.laplace(0.0, 2.0, size=(1, m, 8, 12)))
    y[0, :, 3, 5] = rng.choice([-1, 1], size=m) * rng.randint(60, 400, size=m)  # beyond the windows
    y[0, 0, 0, 0], y[0, 1, 7, 11] = MAX_SYMBOL, -MAX_SYMBOL
    z = rng.randint(-3, 4, size=(1, config["N"], 2, 3))
    y_t, z_t = torch.from_numpy(y).float(), torch.from_numpy(z).float()
    out = {k: v.numpy() for k, v in tensors.items()}
    out.update(config=np.array(json.dumps(config)), y=y.astype(np.int32), z=z.astype(np.int32))
    for order in ORDERS:
        stream = encode_latents(_coder(config, tensors, order), y_t, z_t)
        out[f"stream.{order}"] = np.frombuffer(stream, dtype=np.uint8)
    GOLDEN.parent.mkdir(exist_ok=True)
    np.savez_compressed(GOLDEN, **out)
    sizes = ", ".join(f"{o} {out['stream.' + o].size} B" for o in ORDERS)
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes; streams: {sizes})")


if __name__ == "__main__":
    write()
