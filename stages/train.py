"""DVC stage: train one rate point (params: train, rates.<name>).

    python stages/train.py NAME                       # one process (CPU or one GPU)
    accelerate launch stages/train.py NAME            # many GPUs / nodes
    ACCELERATE_USE_CPU=1 torchrun --standalone --nproc_per_node 2 stages/train.py NAME
"""

import argparse
import json
from pathlib import Path

from grm.pipeline import load_params, rate_point, run_stage, shared_params, write_json
from grm.train import TrainSettings, train

ROOT = Path.cwd()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", help="rate point name (a key of 'rates' in params.yaml)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default=None, help="checkpoint folder (default data/checkpoints/NAME)")
    ap.add_argument("--trace-dir", type=Path, default=None,
                    help="write per-rank audit files (images seen, weight digest) here")
    args = ap.parse_args()
    params = load_params(args.params)
    section = dict(params.get("train") or {})
    shards = section.pop("shards", "data/shards")
    settings_dict = {**section, **rate_point(params, args.name)}
    settings = TrainSettings.from_dict(settings_dict)
    out = Path(args.out or ROOT / "data/checkpoints" / args.name)

    def tracker_factory():
        from grm.tracking import rate_point_tracker
        t = rate_point_tracker(ROOT, shared_params(params), args.name, {"settings": settings_dict, "shards": shards})
        index = Path(shards) / "index.json"
        if index.is_file():
            t.tags({f"shard.{n}": h[:16] for n, h in json.loads(index.read_text())["sha256"].items()})
        write_json(out / "run.json", {"run_id": t.run_id, "rate_point": args.name})
        return t

    result = train(args.name, settings, shards, out, tracker_factory, args.trace_dir)
    if result.history:
        print(json.dumps(result.history[-1]))


if __name__ == "__main__":
    run_stage(main)
