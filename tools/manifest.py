"""The MANIFEST.tsv beside a folder of committed photos: one row per photo, with its source."""

from __future__ import annotations

import csv
from pathlib import Path


def write_manifest(folder: Path, rows: list[dict], fields: list[str]) -> float:
    """Write ``folder``/MANIFEST.tsv, sorted by file; the photos' size in MiB. Two photos may
    not share a file name."""
    names = [r["file"] for r in rows]
    assert len(names) == len(set(names)), "two photos share a name"
    with open(folder / "MANIFEST.tsv", "w", newline="") as f:
        writer = csv.DictWriter(f, fields, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: r["file"]))
    return sum((folder / n).stat().st_size for n in names) / 2**20
