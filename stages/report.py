"""DVC stage: RD plots, tables and BD-rates from every evaluation (params: rates, classic,
report)."""

import csv
import json
import math
from pathlib import Path

from grm.errors import os_failures
from grm.pipeline import paths
from grm.pipeline.stage import (
    run_name,
    run_stage,
    shared_params,
    stage_args,
    variant_seed,
    variants,
    write_json,
)

ROOT = Path.cwd()


def _image_rows(results: list, name_of, image: str) -> list[dict]:
    """One image's rows from a list of evaluation results, each named by ``name_of(result)``."""
    return [
        {**row, "name": name_of(res)}
        for res in results
        for row in res["images"]
        if row["image"] == image
    ]


def _by_photo(result: dict) -> dict:
    """photo → its bpp, PSNR, MS-SSIM (what the report's intervals resample) and, for grm,
    how it used its reference."""
    from grm.pipeline.eval_set import REFERENCE_STATS

    keys = ("bpp", "psnr", "ms_ssim", *REFERENCE_STATS)
    return {row["image"]: {k: row[k] for k in keys if k in row} for row in result["images"]}


def comparison_figures(
    params: dict, labels: dict, subject: str, folder: Path, kinds: dict[str, str]
) -> list[Path]:
    """For the first evaluation photo of each kind, the same crop of the original and of
    every codec at its point nearest the subject's middle rate point on that image (learned:
    the decoded PNGs the evaluate stage wrote; classic: their files on disk, decoded here)."""
    from grm.image_io import read_image
    from grm.pipeline.classic import get_codec
    from grm.pipeline.compare import Panel, nearest, render
    from grm.pipeline.report import photos_by_kind

    rates = list(params["rates"])
    learned = {
        v: [json.loads((ROOT / paths.EVAL / f"{run_name(v, r)}.json").read_text()) for r in rates]
        for v in variants(params)
    }
    classic = {
        c: json.loads((ROOT / paths.EVAL_CLASSIC / f"{c}.json").read_text())
        for c in params.get("classic") or {}
    }
    folder.mkdir(parents=True, exist_ok=True)
    figures = []
    for key in sorted(photos[0] for photos in photos_by_kind(sorted(kinds), kinds).values()):
        original = read_image(ROOT / paths.EVAL_IMAGES / f"{key}.png")[0]
        subject_rows = _image_rows(
            learned.get(subject) or next(iter(learned.values())), lambda r: r["rate_point"], key
        )
        target = sorted(r["bpp"] for r in subject_rows)[len(subject_rows) // 2]
        panels = []
        for variant, results in learned.items():
            row = nearest(_image_rows(results, lambda r: r["rate_point"], key), target)
            image = read_image(
                ROOT / paths.DECODED / run_name(variant, row["name"]) / f"{key}.png"
            )[0]
            panels.append(
                Panel(f"{labels.get(variant, variant)} ({row['name']})", row["bpp"], image)
            )
        for codec, res in classic.items():
            row = nearest(_image_rows(res["points"], lambda p: p["quality"], key), target)
            data = (ROOT / paths.CLASSIC / codec / f"{key}-q{row['name']}.bin").read_bytes()
            c = get_codec(codec)
            panels.append(
                Panel(
                    f"{c.label} (q {row['name']})", row["bpp"], c.decode(data, original.shape[:2])
                )
            )
        path = folder / f"{key}.png"
        render(original, panels, path, f"{key}, every codec near {target:.3f} bpp")
        figures.append(path)
    return figures


def main():
    _, params = stage_args(__doc__)
    from grm.pipeline.classic import get_codec
    from grm.pipeline.eval_set import eval_kinds
    from grm.pipeline.report import Curve, curve_kind, markdown, plot_curves, training_budget
    from grm.pipeline.seeds import seed_groups

    settings = params.get("report") or {}
    subject = settings.get("subject", "grm")
    labels = settings.get("labels") or {}
    curves, images = [], 0
    for variant, spec in variants(params).items():
        kind = curve_kind(variant, spec or {}, subject, variants(params).get(subject) or {})
        curve = Curve(variant, labels.get(variant, variant), kind)
        for rate in params["rates"]:
            path = ROOT / paths.EVAL / f"{run_name(variant, rate)}.json"
            if not path.is_file():
                raise FileNotFoundError(f"missing evaluation for {variant} at {rate}: {path}")
            res = json.loads(path.read_text())
            curve.points.append({"rate_point": rate, **res["mean"], "photos": _by_photo(res)})
            images = res["mean"]["images"]
        curves.append(curve)
    for codec in params.get("classic") or {}:
        res = json.loads((ROOT / paths.EVAL_CLASSIC / f"{codec}.json").read_text())
        curves.append(
            Curve(
                codec,
                get_codec(codec).label,
                "classic",
                [
                    {"rate_point": f"q{p['quality']}", **p["mean"], "photos": _by_photo(p)}
                    for p in res["points"]
                ],
            )
        )
    kinds = eval_kinds(ROOT / paths.EVAL_IMAGES)
    out = ROOT / paths.REPORT
    with os_failures("writing the report to", out, kept="the evaluations it reads are intact"):
        out.mkdir(parents=True, exist_ok=True)
        plot_curves(curves, "psnr", out / "rd_psnr.png")
        plot_curves(curves, "ms_ssim", out / "rd_msssim.png")
        text, metrics = markdown(
            curves,
            settings.get("anchor", "hevc"),
            subject,
            images,
            training_budget(params),
            kinds,
            seed_groups(variants(params)),
            settings.get("goal"),
            {v: variant_seed(params, v) for v in variants(params)},
        )
        figures = comparison_figures(params, labels, subject, out / "compare", kinds)
        text += "\n## What the codecs look like (one photo of each kind)\n\n" + "".join(
            f"![{f.stem}](compare/{f.name})\n\n" for f in figures
        )
        (out / "report.md").write_text(text)
        with open(out / "rd.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["codec", "rate_point", "bpp", "psnr", "ms_ssim"])
            for c in curves:
                for p in c.sorted():
                    w.writerow(
                        [
                            c.name,
                            p["rate_point"],
                            f"{p['bpp']:.5f}",
                            f"{p['psnr']:.4f}",
                            f"{p['ms_ssim']:.5f}",
                        ]
                    )
        finite = {k: v for k, v in metrics.items() if v is not None and math.isfinite(v)}
        write_json(out / "metrics.json", finite)
    from grm.pipeline.tracking import pipeline_tracker

    t = pipeline_tracker(ROOT, shared_params(params))
    t.metrics(finite)
    for f in ("report.md", "rd_psnr.png", "rd_msssim.png", "rd.csv"):
        t.artifact(out / f, "report")
    for f in figures:
        t.artifact(f, "report/compare")
    t.finish()
    record_evaluations(params)
    print(text)


def record_evaluations(params: dict) -> None:
    """Each rate point's evaluation in its training's MLflow run (finished again after), unless
    the run already holds this evaluation."""
    from grm.pipeline.tracking import recording_once

    for variant in variants(params):
        for rate in params["rates"]:
            path = ROOT / paths.EVAL / f"{run_name(variant, rate)}.json"
            res = json.loads(path.read_text())
            with recording_once(ROOT, res.get("run_id"), "grm.eval_sha256", path) as t:
                if t:
                    mean = res["mean"]
                    t.metrics({f"eval/{k}": v for k, v in mean.items() if not isinstance(v, bool)})
                    t.tags({"eval.bit_exact": mean["bit_exact"]})
                    t.artifact(path, "evaluation")
                    t.finish()


if __name__ == "__main__":
    run_stage(main)
