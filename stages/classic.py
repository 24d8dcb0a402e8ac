"""DVC stage: one classic codec over its quality ladder on the evaluation set."""

import argparse
from pathlib import Path

from grm.pipeline import load_params, run_stage, write_json

ROOT = Path.cwd()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("name")
    args = ap.parse_args()
    params = load_params()
    ladders = (params.get("classic") or {})
    if args.name not in ladders:
        raise KeyError(f"classic codec {args.name!r} is not listed under 'classic' in params.yaml")
    from grm.classic_eval import evaluate_classic
    from grm.evaluation import eval_images
    points = evaluate_classic(args.name, list(ladders[args.name]), eval_images(ROOT / "data/eval_images"),
                              ROOT / "data/classic" / args.name)
    write_json(ROOT / "data/eval_classic" / f"{args.name}.json", {"codec": args.name, "points": points})
    for p in points:
        print(args.name, p["quality"], f"{p['mean']['bpp']:.4f} bpp", f"{p['mean']['psnr']:.2f} dB")


if __name__ == "__main__":
    run_stage(main)
