"""DVC stage: images → WebDataset shards + evaluation set (params: prepare)."""

import json
from pathlib import Path

from grm.errors import os_failures
from grm.pipeline import paths
from grm.pipeline.stage import run_stage, stage_args, shared_params, write_json
from grm.pipeline.prepare import PrepareSettings, prepare

ROOT = Path.cwd()


def main():
    _, params = stage_args(__doc__)
    settings = PrepareSettings.from_dict(params.get("prepare") or {})
    shards, eval_dir = ROOT / paths.SHARDS, ROOT / paths.EVAL_IMAGES
    with os_failures("writing the shards to", shards, kept="the source photos are untouched"):
        counts = prepare(settings, ROOT, shards, eval_dir)
        write_json(ROOT / paths.PREPARE_SUMMARY, counts)
    from grm.pipeline.tracking import pipeline_tracker

    tracker = pipeline_tracker(ROOT, shared_params(params))
    tracker.params(params.get("prepare") or {}, "prepare.")
    tracker.metrics({f"prepare/{k}": v for k, v in counts.items()})
    tracker.artifact(shards / "index.json", "data")
    index = json.loads((shards / "index.json").read_text())
    tracker.tags({f"shard.{n}": h[:16] for n, h in index["sha256"].items()})
    print(json.dumps(counts))


if __name__ == "__main__":
    run_stage(main)
