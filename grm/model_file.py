"""Self-contained model files: safetensors weights + the config in the header.

safetensors cannot execute code on load, so a model file handed over by anyone is
safe to open. The model identifier written into every .grm file is the model's name
plus a hash of the file, so a bitstream is only ever decoded by the weights that
wrote it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import DeviceError, ModelFileError, os_failures
from .image_io import share
from .precision import resolve as resolve_precision

FORMAT = "grm-model/1"


@dataclass
class LoadedModel:
    model: torch.nn.Module
    name: str
    weights_hash: bytes  # first 16 bytes of sha256(file)
    arch: str
    config: dict
    path: Path
    extra: dict


def build(arch: str, config: dict) -> torch.nn.Module:
    """Instantiate an architecture by name (grm, or a compressai peer)."""
    if arch == "grm":
        from .model import GRM

        return GRM(config)
    from .peers import PEERS, build_peer  # all of compressai: only for its models

    if arch in PEERS:
        return build_peer(arch, config)
    raise ModelFileError(f"unknown architecture {arch!r}")


def save_model(
    model: torch.nn.Module,
    path: str | Path,
    name: str,
    extra: dict | None = None,
    coder: bool = True,
) -> Path:
    """Write weights + architecture + config atomically (temp file, then rename).

    With ``coder`` (every exported model), the factorised prior's CDF tables and grm's
    integer entropy model are built here, once, and stored: every machine that codes
    with the file then uses the same tables. Training checkpoints skip them.
    """
    from safetensors.torch import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if coder:
        model.update(force=True)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    meta_coder = {}
    if coder and hasattr(model, "integer_model"):
        from .integer_model import VERSION

        tensors.update(model.integer_model().tensors())
        meta_coder = {"entropy_model": f"integer/{VERSION}"}
    meta = {
        "format": FORMAT,
        "arch": model.ARCH,
        "name": name,
        "config": json.dumps(model.export_config()),
        **meta_coder,
    }
    if extra:
        meta["extra"] = json.dumps(extra)
    tmp = path.with_name(path.name + ".tmp")
    with os_failures("writing", path):
        try:
            tmp.write_bytes(canonical(save(tensors, metadata=meta)))
            share(tmp)
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a half-written file only holds space
            raise
    return path


def canonical(data: bytes) -> bytes:
    """A safetensors file with its header's keys sorted. safetensors writes them in the order
    of a Rust hash map, seeded anew in each process, so the same weights gave different
    bytes at each export: a new hash (the one .grm files name their model by), and a new
    file for DVC, which then reran every evaluation downstream."""
    n = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8 : 8 + n]), sort_keys=True, separators=(",", ":"))
    header += " " * (-len(header) % 8)  # the tensors' data stays 8-byte aligned
    return len(header).to_bytes(8, "little") + header.encode() + data[8 + n :]


def coding_device(name: str = "cpu") -> torch.device:
    """The device a model codes on. Any device writes and reads the same bitstreams
    (the entropy model is exact integer arithmetic); only speed differs."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r} (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {name!r} asked for, but torch sees no CUDA GPU on this machine"
            )
        if (device.index or 0) >= torch.cuda.device_count():
            raise DeviceError(
                f"device {name!r} asked for, but this machine has {torch.cuda.device_count()} "
                "GPU(s)"
            )
        return torch.device("cuda", device.index or 0)
    if device.type != "cpu":
        raise DeviceError(f"device {name!r} is not supported (use cpu, cuda or cuda:N)")
    return device


def load_model(path: str | Path, device: str = "cpu", precision: str = "auto") -> LoadedModel:
    """A model file ready to code on ``device``, its transforms in ``precision``
    (``grm.precision``: auto is bf16 where the hardware has it)."""
    from safetensors import SafetensorError
    from safetensors.torch import load as load_bytes

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    dev = coding_device(device)
    data = path.read_bytes()
    try:
        meta = _metadata(data)
        tensors = load_bytes(data)
    except (SafetensorError, ValueError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{path} is not a valid grm model file: {e}") from None
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a grm model file (format {meta.get('format')!r})")
    from .integer_model import PREFIX, IntegerEntropyModel

    coder = {k: tensors.pop(k) for k in [k for k in tensors if k.startswith(PREFIX)]}
    try:
        config = json.loads(meta["config"])
        model = build(meta["arch"], config)
        model.load_state_dict(tensors)
        if coder:
            model.attach_integer_model(IntegerEntropyModel.from_tensors(coder, model).to(dev))
    except ModelFileError:
        raise
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise ModelFileError(f"{path}: weights do not fit the stored config: {e}") from None
    model.to(dev).eval()
    model.transform_precision = resolve_precision(precision, dev)
    try:
        extra = json.loads(meta.get("extra", "{}"))
    except json.JSONDecodeError:
        extra = {}
    return LoadedModel(
        model,
        meta.get("name", path.stem),
        hashlib.sha256(data).digest()[:16],
        meta["arch"],
        config,
        path,
        extra,
    )


def read_metadata(path: str | Path) -> dict:
    """A model file's metadata (name, arch, config) without reading its weights."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else 0
            size = path.stat().st_size
            return _metadata(head + f.read(min(n, max(0, size - 8), 100_000_000)), size)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{path} is not a valid grm model file: {e}") from None


def _metadata(data: bytes, size: int | None = None) -> dict:
    """The safetensors JSON header's __metadata__, read without trusting its length."""
    if len(data) < 8:
        raise ValueError("file too short")
    n = int.from_bytes(data[:8], "little")
    if n > (size if size is not None else len(data)) - 8 or n > len(data) - 8 or n > 100_000_000:
        raise ValueError("header length out of range")
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise ValueError("bad metadata")
    return meta
