"""Files out of Debian packages, fetched with ``apt-get download`` and never installed.

Shared by the photo collection's assembler and the clean benchmark. Debian's
mate-backgrounds is held back for independent checks: nothing here ever fetches it.
"""

from __future__ import annotations

import struct
import subprocess
import zlib
from pathlib import Path

HELD_BACK = ("mate-backgrounds",)


def unpack(package: str, into: Path) -> tuple[Path, str]:
    """Download ``package`` into ``into`` and extract it there; (root, version)."""
    if any(package.startswith(h) for h in HELD_BACK):
        raise ValueError(f"{package} is held back for independent checks and never used")
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", "-q", package], cwd=into, check=True)
    (deb,) = into.glob(f"{package}_*.deb")
    version = deb.name.split("_")[1].replace("%3a", ":")
    root = into / package
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root, version


def rcc_files(data: bytes) -> dict[str, bytes]:
    """Path → content of every file in a Qt resource bundle (.rcc, format 1 to 3)."""
    if data[:4] != b"qres":
        raise ValueError("not a Qt resource bundle")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    node_size = 14 if version < 2 else 22

    def name_at(offset: int) -> str:
        (length,) = struct.unpack(">H", data[names + offset : names + offset + 2])
        start = names + offset + 6
        return data[start : start + 2 * length].decode("utf-16-be")

    out: dict[str, bytes] = {}

    def walk(index: int, prefix: str) -> None:
        at = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", data[at : at + 6])
        name = name_at(name_offset) if index else ""
        path = f"{prefix}/{name}" if name else prefix
        if flags & 0x02:  # directory
            count, first = struct.unpack(">II", data[at + 6 : at + 14])
            for child in range(first, first + count):
                walk(child, path)
            return
        (offset,) = struct.unpack(">I", data[at + 10 : at + 14])
        (size,) = struct.unpack(">I", data[payload + offset : payload + offset + 4])
        blob = data[payload + offset + 4 : payload + offset + 4 + size]
        if flags & 0x01:  # zlib, after a 4-byte length
            blob = zlib.decompress(blob[4:])
        elif flags & 0x04:
            raise ValueError(f"{path}: zstd-compressed entries are not supported")
        out[path] = blob

    walk(0, "")
    return out


def copyright_licences(text: str) -> list[tuple[list[str], str]]:
    """(file patterns, licence) of each stanza of a machine-readable debian/copyright."""
    stanzas = []
    for block in text.split("\n\n"):
        files, licence, field = [], "", ""
        for line in block.splitlines():
            if line[:1] not in (" ", "\t") and ":" in line:
                field, value = line.split(":", 1)
                value = value.strip()
                if field == "Files":
                    files = value.split()
                elif field == "License" and value:
                    licence = value
            elif field == "Files":
                files += line.split()
        if files and licence:
            stanzas.append((files, licence))
    return stanzas


def licence_of(path: str, stanzas: list[tuple[list[str], str]]) -> str:
    """The licence debian/copyright gives ``path`` (source-relative): the last stanza that
    names it wins. A pattern naming one file matches it under another extension too
    (upstream converted images to WebP after the copyright file listed them)."""
    from fnmatch import fnmatchcase

    stem = path.rsplit(".", 1)[0]
    found = ""
    for patterns, licence in stanzas:
        for pattern in patterns:
            named = "*" not in pattern.rsplit("/", 1)[-1]
            if fnmatchcase(path, pattern) or (named and pattern.rsplit(".", 1)[0] == stem):
                found = licence
    return found
