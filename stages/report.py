"""DVC stage: RD plots, tables and BD-rates from every evaluation (params: rates, classic, report)."""

import csv
import json
from pathlib import Path

from grm.pipeline.stage import run_name, run_stage, stage_args, shared_params, variants, write_json

ROOT = Path.cwd()


def seed_twin(spec: dict, subject: dict) -> bool:
    """The subject's own settings with only another seed: its distance measures chance."""
    rest = {k: v for k, v in spec.items() if k != "seed"}
    return "seed" in spec and rest == {k: v for k, v in subject.items() if k != "seed"} \
        and spec["seed"] != subject.get("seed")


def main():
    _, params = stage_args(__doc__)
    from grm.pipeline.classic import get_codec
    from grm.pipeline.report import Curve, markdown, plot_curves
    settings = params.get("report") or {}
    subject = settings.get("subject", "grm")
    labels = settings.get("labels") or {}
    curves, images = [], 0
    for variant, spec in variants(params).items():
        spec = spec or {}
        kind = ("grm" if variant == subject else "seed" if seed_twin(spec, variants(params).get(subject) or {})
                else "peer" if spec.get("arch", "grm") != "grm" else "ablation")
        curve = Curve(variant, labels.get(variant, variant), kind)
        for rate in params["rates"]:
            path = ROOT / "data/eval" / f"{run_name(variant, rate)}.json"
            if not path.is_file():
                raise FileNotFoundError(f"missing evaluation for {variant} at {rate}: {path}")
            res = json.loads(path.read_text())
            curve.points.append({"rate_point": rate, **res["mean"]})
            images = res["mean"]["images"]
        curves.append(curve)
    for codec in params.get("classic") or {}:
        res = json.loads((ROOT / "data/eval_classic" / f"{codec}.json").read_text())
        curves.append(Curve(codec, get_codec(codec).label, "classic",
                            [{"rate_point": f"q{p['quality']}", **p["mean"]} for p in res["points"]]))
    out = ROOT / "data/report"
    out.mkdir(parents=True, exist_ok=True)
    plot_curves(curves, "psnr", out / "rd_psnr.png")
    plot_curves(curves, "ms_ssim", out / "rd_msssim.png")
    train = params.get("train") or {}
    budget = (f"Training budget, the same for every learned model: {train.get('steps')} steps of batch "
              f"{train.get('batch_size')} × {train.get('crop')}² crops (model `{train.get('model')}`).")
    text, metrics = markdown(curves, settings.get("anchor", "hevc"), subject, images, budget)
    (out / "report.md").write_text(text)
    with open(out / "rd.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["codec", "rate_point", "bpp", "psnr", "ms_ssim"])
        for c in curves:
            for p in c.sorted():
                w.writerow([c.name, p["rate_point"], f"{p['bpp']:.5f}", f"{p['psnr']:.4f}",
                             f"{p['ms_ssim']:.5f}"])
    import math
    finite = {k: v for k, v in metrics.items() if v is not None and math.isfinite(v)}
    write_json(out / "metrics.json", finite)
    from grm.pipeline.tracking import pipeline_tracker
    t = pipeline_tracker(ROOT, shared_params(params))
    t.metrics(finite)
    for f in ("report.md", "rd_psnr.png", "rd_msssim.png", "rd.csv"):
        t.artifact(out / f, "report")
    t.finish()
    print(text)


if __name__ == "__main__":
    run_stage(main)
