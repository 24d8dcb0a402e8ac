"""One training run as the train and base stages start it: settings, tracking, the trainer."""

from __future__ import annotations

import json
from pathlib import Path

from .stage import shared_params, write_json
from .train import TrainResult, TrainSettings, train, training_code_digest


def run_training(
    root: Path,
    code_root: Path,
    params: dict,
    variant: str,
    name: str,
    settings: dict,
    shards: str,
    out: Path,
    trace_dir: Path | None = None,
    kind: str = "rate_point",
) -> TrainResult:
    """Train ``name`` into ``out``, tracked as an MLflow child run of the pipeline run."""
    s = TrainSettings.from_dict(settings)

    def tracker_factory(result):
        from .tracking import rate_point_tracker

        t = rate_point_tracker(
            root,
            shared_params(params),
            name,
            result.key_digest,
            kind=kind,
            fresh=not result.resumed_from,
        )
        tags = {"grm.variant": variant, "grm.run_key": result.key_digest}
        if kind == "rate_point":
            tags["grm.rate"] = name[len(variant) + 1 :]
        if s.init_from:
            tags["grm.init_from"] = s.init_from
        if result.restarted_because:
            tags["grm.fresh_start"] = ", ".join(result.restarted_because) + " changed"
        index = Path(shards) / "index.json"
        if index.is_file():
            tags.update(
                {f"shard.{n}": h[:16] for n, h in json.loads(index.read_text())["sha256"].items()}
            )
        t.tags(tags)
        write_json(out / "run.json", {"run_id": t.run_id, "variant": variant, "name": name})
        return t

    result = train(
        name, s, shards, out, tracker_factory, trace_dir, training_code_digest(code_root)
    )
    if result.history:
        print(json.dumps(result.history[-1]))
    return result
