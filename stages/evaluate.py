"""DVC stage: real-bitstream evaluation of one exported model on the evaluation set.

The report, one process for all, records each evaluation in its model's MLflow run: opening
MLflow here cost 2.8 s a stage, a rate point."""

import json
from pathlib import Path

from grm.errors import os_failures
from grm.pipeline import paths
from grm.pipeline.stage import run_args, run_stage, write_json

ROOT = Path.cwd()


def main():
    args, params, name = run_args(__doc__)
    from grm.pipeline.eval_set import eval_images, mean_row
    from grm.pipeline.evaluation import evaluate_model
    from grm.model_file import load_model

    lm = load_model(ROOT / paths.MODELS / f"{name}.safetensors")
    decoded = ROOT / paths.DECODED / name
    with os_failures(
        f"writing the decoded photos of {name} to", decoded, kept="the model is intact"
    ):
        rows = evaluate_model(lm, eval_images(ROOT / paths.EVAL_IMAGES), decoded)
    mean = mean_row(rows)
    result = {
        "variant": args.variant,
        "rate_point": args.rate,
        "arch": lm.arch,
        "run_id": lm.extra.get("run_id"),  # the report records the evaluation in this run
        "mean": mean,
        "images": rows,
    }
    out = ROOT / paths.EVAL / f"{name}.json"
    write_json(out, result)
    print(json.dumps(mean))


if __name__ == "__main__":
    run_stage(main)
