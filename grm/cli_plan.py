"""Which file the ``grm`` command writes for each input: pure path logic, no coding."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import GrmError

STDIO = "-"


@dataclass
class Job:
    src: str  # a path or "-"
    dst: str


def _expand(inputs: list[str], suffixes: set[str]) -> list[tuple[str, Path | None]]:
    """(input, folder it came from): folders expand to their matching files, recursively."""
    out: list[tuple[str, Path | None]] = []
    for item in inputs:
        p = Path(item)
        if item != STDIO and p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes)
            if not files:
                raise GrmError(f"{p}: no {'/'.join(sorted(suffixes))} files in this folder")
            out.extend((str(f), p) for f in files)
        else:
            out.append((item, None))
    return out


def plan(inputs: list[str], output: str | None, suffixes: set[str], new_suffix: str) -> list[Job]:
    """Pair inputs with outputs: ``in out``, ``in`` (beside it), or ``in... -o DIR``.

    ``FOLDER NEW`` (a folder, then a path that does not exist) codes the folder into NEW,
    as ``cp -r`` would: writing beside the inputs there was never what was meant."""
    if (
        output is None
        and len(inputs) == 2
        and Path(inputs[0]).is_dir()
        and not Path(inputs[1]).exists()
    ):
        return plan(inputs[:1], inputs[1], suffixes, new_suffix)
    if output is None and len(inputs) == 2 and not Path(inputs[0]).is_dir():
        inputs, output = inputs[:1], inputs[1]
        if Path(output).is_dir():
            return plan(inputs, output, suffixes, new_suffix)
        return [Job(inputs[0], output)]
    items = _expand(inputs, suffixes)
    if output is None:
        if any(src == STDIO for src, _ in items):
            raise GrmError("reading stdin needs an output: `-` for stdout, or a file name")
        return [Job(src, str(Path(src).with_suffix(new_suffix))) for src, _ in items]
    single = len(items) == 1 and items[0][1] is None
    if single and not Path(output).is_dir() and not output.endswith(("/", "\\")):
        return [Job(items[0][0], output)]
    if any(src == STDIO for src, _ in items):
        raise GrmError("stdin (`-`) can only be coded as a single file")
    out_dir = Path(output)
    jobs = []
    for src, base in items:
        rel = Path(src).relative_to(base) if base else Path(Path(src).name)
        jobs.append(Job(src, str((out_dir / rel).with_suffix(new_suffix))))
    dsts = [j.dst for j in jobs]
    if len(set(dsts)) != len(dsts):
        raise GrmError(
            f"several inputs would write the same file in {out_dir}; code them in separate runs"
        )
    return jobs
