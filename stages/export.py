"""DVC stage: for each rate point, pick the checkpoint with the best validation RD loss and
export it, coding tables built (params: variants, rates). Writes data/models/VARIANT-RATE.
safetensors for each and data/selection.json (the step chosen and its validation figures).

    python -m stages.export                     # every rate point of every variant
    python -m stages.export VARIANT [RATE ...]  # those of one variant (default: all)

One process exports them all: an export is a fraction of a second of work, against ~6 s
of start-up (torch, MLflow, DVC) for a stage of its own. The same checkpoint exports to
the same bytes, so the evaluation of a model that did not change does not rerun; a model
is recorded in its MLflow run only when it is new there.
"""

import json
from pathlib import Path

from grm.errors import os_failures, shown_path
from grm.pipeline import paths
from grm.pipeline.stage import (
    run_name,
    run_settings,
    run_stage,
    stage_args,
    variants,
    write_json,
)

ROOT = Path.cwd()


def best_checkpoint(name: str) -> tuple[Path, dict, list]:
    """(the weights of the step with the lowest validation loss, that validation, the history)."""
    ckpt = ROOT / paths.RATE_RUNS / name
    history_file = ckpt / "history.json"
    if not history_file.is_file():
        raise FileNotFoundError(f"no validation history in {ckpt}: run the train stage first")
    history = json.loads(history_file.read_text())
    best = min(history, key=lambda h: h["loss"])
    return ckpt / "weights" / f"step-{best['step']:08d}.safetensors", best, history


def export(name: str, weights: Path, best: dict, history: list) -> dict:
    """Write one rate point's model file (``best_checkpoint``'s answer); returns what its
    MLflow run should record."""
    from grm.model_file import load_model, save_model

    ckpt = ROOT / paths.RATE_RUNS / name
    lm = load_model(weights)
    run_id = (
        json.loads((ckpt / "run.json").read_text())["run_id"]
        if (ckpt / "run.json").is_file()
        else None
    )
    out = ROOT / paths.MODELS / f"{name}.safetensors"
    # Exports the coding tables too: the factorised prior's CDFs and, for grm, the
    # integer entropy model that makes its files decode on any machine.
    with os_failures(
        f"exporting {name} to", out, kept=f"the checkpoints in {shown_path(ckpt)} are intact"
    ):
        save_model(
            lm.model, out, name=name, extra={"run_id": run_id, "step": best["step"], "val": best}
        )
    summary = {
        "selected_step": best["step"],
        "val_loss": best["loss"],
        "val_bpp": best["bpp"],
        "val_psnr": best["psnr"],
        "checkpoints": len(history),
    }
    return {"name": name, "run_id": run_id, "summary": summary, "model": out, "ckpt": ckpt}


def record(exported: list[dict]) -> None:
    """Each model in its training's MLflow run, unless that run already holds these bytes."""
    from grm.pipeline.tracking import recording_once

    for e in exported:
        with recording_once(ROOT, e["run_id"], "grm.model_sha256", e["model"]) as t:
            if t:
                t.metrics({f"export/{k}": v for k, v in e["summary"].items()})
                t.artifact(e["model"], "model")
                t.artifact(e["ckpt"] / "history.json", "training")
                t.tags({"selected_checkpoint": f"step-{e['summary']['selected_step']:08d}"})


def main():
    def options(ap):
        ap.add_argument("variant", nargs="?", help="a model variant (default: every variant)")
        ap.add_argument("rate", nargs="*", help="its rate points (default: all of them)")

    args, params = stage_args(__doc__, extra=options)
    runs = [
        (v, r)
        for v in ([args.variant] if args.variant else variants(params))
        for r in (args.rate or params["rates"])
    ]
    for v, r in runs:  # every name checked before anything is read
        run_settings(params, v, r)
    # Every run's choice before anything is written.
    chosen = {run_name(v, r): best_checkpoint(run_name(v, r)) for v, r in runs}
    exported = [export(name, *choice) for name, choice in chosen.items()]
    # A partial export (VARIANT RATE) keeps the other rate points' entries.
    selection_file = ROOT / paths.SELECTION
    selection = (
        json.loads(selection_file.read_text()) if args.variant and selection_file.is_file() else {}
    )
    selection.update({e["name"]: e["summary"] for e in exported})
    write_json(selection_file, selection)
    record(exported)
    for e in exported:
        print(json.dumps({e["name"]: e["summary"]}))


if __name__ == "__main__":
    run_stage(main)
