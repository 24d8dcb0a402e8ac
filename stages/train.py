"""DVC stage: train one model (params: train, variants.VARIANT, rates.RATE).

    python stages/train.py VARIANT RATE                       # one process (CPU or one GPU)
    accelerate launch stages/train.py VARIANT RATE            # many GPUs / nodes
    ACCELERATE_USE_CPU=1 torchrun --standalone --nproc_per_node 2 stages/train.py VARIANT RATE
"""

import json
from pathlib import Path

from grm.pipeline.stage import run_args, run_settings, run_stage, shared_params, write_json
from grm.pipeline.train import TrainSettings, train, training_code_digest

ROOT = Path.cwd()
CODE = Path(__file__).resolve().parents[1]    # the checkout this stage's code comes from


def main():
    def options(ap):
        ap.add_argument("--out", default=None, help="checkpoint folder (default data/checkpoints/VARIANT-RATE)")
        ap.add_argument("--trace-dir", type=Path, default=None,
                        help="write per-rank audit files (images seen, weight digest) here")

    args, params, name = run_args(__doc__, extra=options)
    settings_dict, shards = run_settings(params, args.variant, args.rate)
    settings = TrainSettings.from_dict(settings_dict)
    out = Path(args.out or ROOT / "data/checkpoints" / name)

    def tracker_factory(result):
        from grm.pipeline.tracking import rate_point_tracker
        t = rate_point_tracker(ROOT, shared_params(params), name, result.key_digest)
        tags = {"grm.variant": args.variant, "grm.rate": args.rate, "grm.run_key": result.key_digest}
        if result.restarted_because:
            tags["grm.fresh_start"] = ", ".join(result.restarted_because) + " changed"
        index = Path(shards) / "index.json"
        if index.is_file():
            tags.update({f"shard.{n}": h[:16] for n, h in json.loads(index.read_text())["sha256"].items()})
        t.tags(tags)
        write_json(out / "run.json", {"run_id": t.run_id, "variant": args.variant, "rate_point": args.rate})
        return t

    code = training_code_digest(CODE)
    result = train(name, settings, shards, out, tracker_factory, args.trace_dir, code)
    if result.history:
        print(json.dumps(result.history[-1]))


if __name__ == "__main__":
    run_stage(main)
