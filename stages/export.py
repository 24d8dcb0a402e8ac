"""DVC stage: pick the checkpoint with the best validation RD loss and export it, coding tables
built."""

import json
from pathlib import Path

from grm.errors import os_failures, shown_path
from grm.pipeline import paths
from grm.pipeline.stage import run_args, run_stage, write_json

ROOT = Path.cwd()


def main():
    args, params, name = run_args(__doc__)
    ckpt = ROOT / paths.RATE_RUNS / name
    history_file = ckpt / "history.json"
    if not history_file.is_file():
        raise FileNotFoundError(f"no validation history in {ckpt}: run the train stage first")
    history = json.loads(history_file.read_text())
    best = min(history, key=lambda h: h["loss"])
    from grm.model_file import load_model, save_model

    lm = load_model(ckpt / "weights" / f"step-{best['step']:08d}.safetensors")
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
    write_json(ROOT / paths.MODELS / f"{name}.json", summary)
    if run_id:
        from grm.pipeline.tracking import tracker_for_run

        t = tracker_for_run(ROOT, run_id)
        t.metrics({f"export/{k}": v for k, v in summary.items()})
        t.tags({"selected_checkpoint": f"step-{best['step']:08d}"})
        t.artifact(out, "model")
        t.artifact(history_file, "training")
    print(json.dumps(summary))


if __name__ == "__main__":
    run_stage(main)
