"""DVC stage: train one rate point, fine-tuning its variant's base (params: train,
variants.VARIANT, rates.RATE; the base model data/bases/VARIANT.safetensors).

    python -m stages.train VARIANT RATE                       # one process (CPU or one GPU)
    accelerate launch -m stages.train VARIANT RATE            # many GPUs / nodes
    ACCELERATE_USE_CPU=1 torchrun --standalone --nproc_per_node 2 -m stages.train VARIANT RATE
"""

from pathlib import Path

from grm.threads import spin_while_training

spin_while_training()  # before grm.pipeline.stage sets the passive policy and torch loads

from grm.pipeline import paths  # noqa: E402
from grm.pipeline.stage import run_args, run_settings, run_stage  # noqa: E402
from grm.pipeline.training_run import run_training  # noqa: E402

ROOT = Path.cwd()
CODE = Path(__file__).resolve().parents[1]  # the checkout this stage's code comes from


def main():
    def options(ap):
        ap.add_argument(
            "--out", default=None, help="checkpoint folder (default data/checkpoints/VARIANT-RATE)"
        )
        ap.add_argument(
            "--trace-dir",
            type=Path,
            default=None,
            help="write per-rank audit files (images seen, weight digest) here",
        )

    args, params, name = run_args(__doc__, extra=options)
    settings, shards = run_settings(params, args.variant, args.rate)
    out = Path(args.out or ROOT / paths.CHECKPOINTS / name)
    run_training(ROOT, CODE, params, args.variant, name, settings, shards, out, args.trace_dir)


if __name__ == "__main__":
    run_stage(main)
