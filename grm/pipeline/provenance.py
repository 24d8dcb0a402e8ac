"""Which source files a stage runs, and a digest of them.

DVC reruns a stage when a listed dependency changes, and the trainer resumes a
checkpoint only when the code that defines training is unchanged; both need the
same answer to "what code does this stage run?". It is read from the import
statements (function-level ones included) of the stage script and, transitively,
of every ``grm``/``stages`` module it reaches, without importing anything.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

PROJECT_PACKAGES = ("grm", "stages")


def _module_file(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(root: Path, path: Path) -> set[str]:
    """Absolute module names imported anywhere in ``path`` (``from a import b`` gives a and a.b)."""
    package = _module_name(root, path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] in PROJECT_PACKAGES}


def stage_sources(root: Path, script: str | Path) -> list[Path]:
    """The stage script and every project module it imports, directly or not, relative to root.

    Package ``__init__`` files are left out: they hold docstrings and the version only.
    """
    root = Path(root).resolve()
    start = (root / script).resolve()
    seen, todo = {start}, [start]
    while todo:
        for module in _imports(root, todo.pop()):
            f = _module_file(root, module)
            if f is not None and f not in seen:
                seen.add(f)
                todo.append(f)
    return sorted(p.relative_to(root) for p in seen if p.name != "__init__.py")


def json_digest(obj) -> str:
    """16 hex digits of sha256 over canonical JSON: run keys and pipeline identities."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def code_digest(root: Path, script: str | Path, exclude: tuple[str, ...] = ()) -> str:
    """sha256 over the names and bytes of ``stage_sources`` (less ``exclude``)."""
    root = Path(root).resolve()
    h = hashlib.sha256()
    for rel in stage_sources(root, script):
        if rel.as_posix() in exclude:
            continue
        h.update(rel.as_posix().encode() + b"\0")
        h.update((root / rel).read_bytes() + b"\0")
    return h.hexdigest()
