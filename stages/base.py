"""DVC stage: train a variant's base model, the start of each of its rate points
(params: train, variants.VARIANT, base). Writes data/bases/VARIANT.safetensors.

    python -m stages.base VARIANT
"""

from pathlib import Path

from grm.threads import spin_while_training

spin_while_training()  # before grm.pipeline.stage sets the passive policy and torch loads

from grm.pipeline import paths  # noqa: E402
from grm.pipeline.stage import base_path, base_settings, run_stage, stage_args  # noqa: E402
from grm.pipeline.training_run import run_training  # noqa: E402

ROOT = Path.cwd()
CODE = Path(__file__).resolve().parents[1]


def main():
    def options(ap):
        ap.add_argument("variant", help="model variant (a key of 'variants' in params.yaml)")

    args, params = stage_args(__doc__, extra=options)
    settings, shards = base_settings(params, args.variant)
    name = f"{args.variant}-base"
    out = ROOT / paths.CHECKPOINTS / name
    result = run_training(
        ROOT, CODE, params, args.variant, name, settings, shards, out, kind="base"
    )
    from grm.image_io import write_atomic

    dest = ROOT / base_path(args.variant)
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(dest, (out / "weights" / f"step-{result.steps:08d}.safetensors").read_bytes())


if __name__ == "__main__":
    run_stage(main)
