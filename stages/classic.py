"""DVC stage: one classic codec over its quality ladder on the evaluation set."""

from pathlib import Path

from grm.errors import os_failures
from grm.pipeline import paths
from grm.pipeline.stage import run_stage, stage_args, write_json

ROOT = Path.cwd()


def main():
    args, params = stage_args(
        __doc__,
        extra=lambda ap: ap.add_argument(
            "name", help="classic codec (a key of 'classic' in params.yaml)"
        ),
    )
    ladders = params.get("classic") or {}
    if args.name not in ladders:
        raise KeyError(f"classic codec {args.name!r} is not listed under 'classic' in params.yaml")
    from grm.pipeline.classic_eval import evaluate_classic
    from grm.pipeline.eval_set import eval_images

    folder = ROOT / paths.CLASSIC / args.name
    with os_failures(f"writing the {args.name} files to", folder, kept="the photos are intact"):
        points = evaluate_classic(
            args.name, list(ladders[args.name]), eval_images(ROOT / paths.EVAL_IMAGES), folder
        )
    write_json(
        ROOT / paths.EVAL_CLASSIC / f"{args.name}.json", {"codec": args.name, "points": points}
    )
    for p in points:
        print(args.name, p["quality"], f"{p['mean']['bpp']:.4f} bpp", f"{p['mean']['psnr']:.2f} dB")


if __name__ == "__main__":
    run_stage(main)
