"""Finding model files on a search path: by the hash a .grm names, or by rate point.

Every .grm names the model that wrote it by a hash of the model file, so a decoder
given a folder of models needs no other hint. The search path is ``--models DIR``
(repeatable), else ``$GRM_MODELS`` (``os.pathsep``-separated), else ``data/models``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .checksum import sha256_file
from .errors import ModelFileError
from .model_file import read_metadata

ENV = "GRM_MODELS"
DEFAULT_DIR = "data/models"


def search_path(dirs: list[str] | None = None) -> list[Path]:
    if dirs:
        return [Path(d) for d in dirs]
    env = os.environ.get(ENV)
    if env:
        return [Path(d) for d in env.split(os.pathsep) if d]
    return [Path(DEFAULT_DIR)]


@dataclass(frozen=True)
class ModelEntry:
    path: Path
    name: str  # the name stored in the file (VARIANT-RATE for pipeline exports)

    @property
    def variant_rate(self) -> tuple[str, str]:
        variant, _, rate = self.name.rpartition("-")
        return variant, rate


_HASHES: dict[Path, bytes] = {}


def file_hash(path: Path) -> bytes:
    """The identifier a .grm stores: the first 16 bytes of sha256(model file)."""
    key = path.resolve()
    if key not in _HASHES:
        _HASHES[key] = bytes.fromhex(sha256_file(path))[:16]
    return _HASHES[key]


def list_models(dirs: list[Path]) -> list[ModelEntry]:
    """Readable grm model files in the given folders (others are passed over)."""
    found = []
    for d in dirs:
        for p in sorted(d.glob("*.safetensors")) if d.is_dir() else []:
            try:
                meta = read_metadata(p)
            except ModelFileError:
                continue
            found.append(ModelEntry(p, meta.get("name", p.stem)))
    return found


def _where(dirs: list[Path]) -> str:
    return ", ".join(str(d) for d in dirs) or "(no folders)"


def find_by_hash(weights_hash: bytes, model_name: str, dirs: list[Path]) -> Path:
    for entry in list_models(dirs):
        if file_hash(entry.path) == weights_hash:
            return entry.path
    raise ModelFileError(
        f"no model file with hash {weights_hash.hex()[:12]} (model {model_name!r}) in "
        f"{_where(dirs)}; pass --model FILE or --models DIR (or set {ENV})"
    )


def _unique(entries: list[ModelEntry], what: str) -> Path:
    """One model, or an error naming the candidates (identical copies count as one)."""
    distinct = {file_hash(e.path): e for e in entries}
    if len(distinct) > 1:
        names = ", ".join(str(e.path) for e in distinct.values())
        raise ModelFileError(
            f"{len(distinct)} different models match {what}: {names}; choose one with --model"
        )
    return next(iter(distinct.values())).path


def find_by_rate(rate: str, variant: str, dirs: list[Path]) -> Path:
    entries = list_models(dirs)
    match = [e for e in entries if e.variant_rate == (variant, rate)]
    if not match:
        have = sorted({e.name for e in entries}) or ["none"]
        raise ModelFileError(
            f"no {variant} model at rate point {rate!r} in {_where(dirs)} "
            f"(models there: {', '.join(have)})"
        )
    return _unique(match, f"--rate {rate} (variant {variant})")


def variant_models(variant: str, dirs: list[Path]) -> list[Path]:
    """One model file per rate point of a variant (for choosing by target bpp)."""
    by_rate: dict[str, list[ModelEntry]] = {}
    for e in list_models(dirs):
        v, rate = e.variant_rate
        if v == variant:
            by_rate.setdefault(rate, []).append(e)
    if not by_rate:
        raise ModelFileError(f"no {variant} models in {_where(dirs)}")
    return [_unique(es, f"rate point {r} (variant {variant})") for r, es in sorted(by_rate.items())]
