"""DVC stage: train the rate points, each fine-tuning its variant's base (params: train,
variants, rates; the base models data/bases/VARIANT.safetensors). Writes one resumable run
per rate point, data/checkpoints/rates/VARIANT-RATE.

    python -m stages.train                           # every rate point of every variant
    python -m stages.train VARIANT [RATE ...]        # those of one variant (default: all)
    accelerate launch -m stages.train [VARIANT ...]  # many GPUs / nodes: one after another
    ACCELERATE_USE_CPU=1 torchrun --standalone --nproc_per_node 2 -m stages.train VARIANT RATE

On a CPU the fine-tunes train side by side, up to `train.jobs` at a time ('auto': one per
core), the longest first so that trainings of equal length pair up (grm/pipeline/
side_by_side.py). A rate point whose run is already complete (same run key) is not trained
again, so adding a rate point or a variant trains only its own, each on the share of the
cores it would have had from scratch.
"""

import sys
from functools import partial
from pathlib import Path

from grm.threads import spin_while_training

spin_while_training()  # before grm.pipeline.stage sets the passive policy and torch loads

from grm.pipeline import paths  # noqa: E402
from grm.pipeline.stage import (  # noqa: E402
    run_name,
    run_settings,
    run_stage,
    stage_args,
    variants,
)

ROOT = Path.cwd()
CODE = Path(__file__).resolve().parents[1]  # the checkout this stage's code comes from


def train_rate(
    params: dict, variant: str, rate: str, settings: dict, shards: str, out: Path, trace_dir
) -> None:
    from grm.pipeline.training_run import run_training

    run_training(
        ROOT, CODE, params, variant, run_name(variant, rate), settings, shards, out, trace_dir
    )


def main():
    def options(ap):
        ap.add_argument("variant", nargs="?", help="a model variant (default: every variant)")
        ap.add_argument("rate", nargs="*", help="its rate points (default: all of them)")
        ap.add_argument(
            "--out",
            default=None,
            help="checkpoint folder of the one rate point given (default "
            "data/checkpoints/rates/VARIANT-RATE)",
        )
        ap.add_argument(
            "--trace-dir",
            type=Path,
            default=None,
            help="write per-rank audit files (images seen, weight digest) here",
        )

    args, params = stage_args(__doc__, extra=options)
    runs = [
        (v, r)
        for v in ([args.variant] if args.variant else variants(params))
        for r in (args.rate or params["rates"])
    ]
    from grm.pipeline.train import TrainSettings, is_complete, training_code_digest

    # Every name and setting checked before anything trains.
    found = {(v, r): run_settings(params, v, r) for v, r in runs}
    settings = {vr: TrainSettings.from_dict(s) for vr, (s, _) in found.items()}
    if args.out and len(runs) != 1:
        raise ValueError("--out names the folder of one rate point: give VARIANT and one RATE")
    code = training_code_digest(CODE)

    def out(v: str, r: str) -> Path:
        return Path(args.out) if args.out else ROOT / paths.RATE_RUNS / run_name(v, r)

    todo = []
    for vr in runs:
        if is_complete(settings[vr], found[vr][1], out(*vr), code):
            print(
                f"{run_name(*vr)} is complete at step {settings[vr].steps}: not trained again",
                file=sys.stderr,
            )
        else:
            todo.append(vr)
    # The longest first: trainings of equal length then run together and end together.
    todo.sort(key=lambda vr: -settings[vr].steps)
    from grm.pipeline.side_by_side import train_all

    me = [sys.executable, "-m", "stages.train", "--params", args.params]
    if args.trace_dir:
        me += ["--trace-dir", str(args.trace_dir)]
    train_all(
        {
            run_name(v, r): (
                partial(train_rate, params, v, r, *found[v, r], out(v, r), args.trace_dir),
                me + [v, r],
            )
            for v, r in todo
        },
        len(variants(params)) * len(params["rates"]),
        "train",
        ROOT,
        params,
    )


if __name__ == "__main__":
    run_stage(main)
