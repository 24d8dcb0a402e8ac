"""DVC stage: train the variants' bases, the start of each of their rate points (params:
train, variants, base). Writes data/bases/VARIANT.safetensors for each.

    python -m stages.base [VARIANT ...]             # every variant of params.yaml by default
    accelerate launch -m stages.base [VARIANT ...]  # many GPUs / nodes: one base after another

On a CPU the bases train side by side, up to `base.jobs` at a time ('auto': one per core),
the cores shared out among them (grm/pipeline/side_by_side.py). A base whose run is already
complete (same run key) is not trained again, so adding a variant trains only its base,
on the share of the cores it would have had from scratch: the same model either way.
"""

import sys
from functools import partial
from pathlib import Path

from grm.threads import spin_while_training

spin_while_training()  # before grm.pipeline.stage sets the passive policy and torch loads

from grm.pipeline import paths  # noqa: E402
from grm.pipeline.stage import (  # noqa: E402
    base_path,
    base_settings,
    run_stage,
    stage_args,
    variants,
)

ROOT = Path.cwd()
CODE = Path(__file__).resolve().parents[1]


def train_base(params: dict, variant: str) -> None:
    from grm.image_io import write_atomic
    from grm.pipeline.training_run import run_training

    settings, shards = base_settings(params, variant)
    out = ROOT / paths.BASE_RUNS / variant
    result = run_training(
        ROOT, CODE, params, variant, f"{variant}-base", settings, shards, out, kind="base"
    )
    dest = ROOT / base_path(variant)
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(dest, (out / "weights" / f"step-{result.steps:08d}.safetensors").read_bytes())


def is_trained(params: dict, variant: str, code: str) -> bool:
    from grm.pipeline.train import TrainSettings, is_complete

    settings, shards = base_settings(params, variant)
    out = ROOT / paths.BASE_RUNS / variant
    return is_complete(TrainSettings.from_dict(settings), shards, out, code)


def main():
    def options(ap):
        ap.add_argument(
            "variant", nargs="*", help="model variants (keys of 'variants'; default: all)"
        )

    args, params = stage_args(__doc__, extra=options)
    names = args.variant or list(variants(params))
    for v in names:
        base_settings(params, v)  # every name and setting checked before anything trains
    from grm.pipeline.train import training_code_digest

    code = training_code_digest(CODE)
    todo = [v for v in names if not is_trained(params, v, code)]
    for v in names:
        if v not in todo:
            train_base(params, v)  # found complete: only its file is written again
    from grm.pipeline.side_by_side import train_all

    me = [sys.executable, "-m", "stages.base", "--params", args.params]
    train_all(
        {f"the base of {v}": (partial(train_base, params, v), me + [v]) for v in todo},
        len(variants(params)),
        "base",
        ROOT,
        params,
    )


if __name__ == "__main__":
    run_stage(main)
