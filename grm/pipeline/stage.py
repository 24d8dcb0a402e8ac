"""Helpers the DVC stage scripts share: parameters, paths, logging, error reporting."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import yaml

from ..quiet import quiet_dependencies
from ..threads import wait_passively

wait_passively()  # before any stage imports torch
quiet_dependencies()

from ..errors import GrmError, as_os_error, debugging  # noqa: E402
from . import paths  # noqa: E402

SHARED_SECTIONS = ("prepare", "train", "base")
# Training settings that change how a run is logged or kept, never the weights it produces.
BOOKKEEPING = ("log_every", "keep_states", "max_bad_steps")
# Settings of train and base that say how the trainings are scheduled, not what they are.
SCHEDULING = ("jobs",)
_LOADED: dict = {}  # the params this stage read


def load_params(path: str | Path = "params.yaml") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parameters file not found: {path}")
    params = yaml.safe_load(path.read_text()) or {}
    rates = params.get("rates")
    if not isinstance(rates, dict) or not rates:
        raise ValueError("params.yaml needs a non-empty 'rates' mapping (name → {lmbda: …})")
    for name, rp in rates.items():
        if not isinstance(rp, dict) or "lmbda" not in rp:
            raise ValueError(f"rate point {name!r} needs a 'lmbda'")
    return params


def shared_params(params: dict) -> dict:
    """What defines a pipeline run: data and training settings (not the rate points, not
    bookkeeping)."""
    shared = {k: dict(params.get(k) or {}) for k in SHARED_SECTIONS if k in params}
    for k in BOOKKEEPING:
        shared["train"].pop(k, None)
    for k in SCHEDULING:
        shared["train"].pop(k, None)
        shared.get("base", {}).pop(k, None)
    return shared


def rate_point(params: dict, name: str) -> dict:
    if name not in params["rates"]:
        raise KeyError(f"unknown rate point {name!r}; params.yaml has {sorted(params['rates'])}")
    return params["rates"][name]


def variants(params: dict) -> dict:
    """Models trained at every rate point; the default is grm alone."""
    return params.get("variants") or {"grm": {"arch": "grm"}}


def run_name(variant: str, rate: str) -> str:
    return f"{variant}-{rate}"


def base_path(variant: str) -> str:
    """Where a variant's base model lies: the weights every rate point of it fine-tunes from."""
    return str(paths.BASES / f"{variant}.safetensors")


def _variant_settings(params: dict, variant: str) -> tuple[dict, str]:
    all_variants = variants(params)
    if variant not in all_variants:
        raise KeyError(f"unknown variant {variant!r}; params.yaml has {sorted(all_variants)}")
    section = {k: v for k, v in (params.get("train") or {}).items() if k not in SCHEDULING}
    shards = section.pop("shards", str(paths.SHARDS))
    v = dict(all_variants[variant] or {})
    if "label" in v:
        raise ValueError(
            f"variants.{variant}.label: display names live under report.labels "
            f"(so editing one does not retrain the model)"
        )
    return {**section, **v}, shards


def base_settings(params: dict, variant: str) -> tuple[dict, str]:
    """Training settings of a variant's base: train ⊕ variant ⊕ base."""
    base = params.get("base")
    if not isinstance(base, dict) or not {"lmbda", "steps", "lr_drop_at"} <= set(base):
        raise ValueError(
            "params.yaml needs a 'base' section with lmbda, steps and lr_drop_at "
            "(the run every rate point of a variant fine-tunes from)"
        )
    settings, shards = _variant_settings(params, variant)
    base = {k: v for k, v in base.items() if k not in SCHEDULING}
    return {**settings, **base}, shards


def variant_seed(params: dict, variant: str) -> int:
    """The seed a variant trains with (train ⊕ variant; 0, TrainSettings' default, where
    neither sets one): trainings of one seed start alike. Read without importing the
    training code (torch), which the report does not need."""
    return _variant_settings(params, variant)[0].get("seed", 0)


def run_settings(params: dict, variant: str, rate: str) -> tuple[dict, str]:
    """Training settings of one (variant, rate point): train ⊕ variant ⊕ rate point, started
    from the variant's base model (a rate point may set its own ``init_from``)."""
    settings, shards = _variant_settings(params, variant)
    return {"init_from": base_path(variant), **settings, **rate_point(params, rate)}, shards


def stage_args(description: str, argv=None, extra=None, per_model: bool = False):
    """Parse a stage's command line (so ``--help`` prints usage and does nothing) and params.yaml.

    Per-model stages take VARIANT RATE; unknown names fail here with a clear message.
    Returns (args, params).
    """
    import argparse

    ap = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if per_model:
        ap.add_argument("variant", help="model variant (a key of 'variants' in params.yaml)")
        ap.add_argument("rate", help="rate point (a key of 'rates' in params.yaml)")
    ap.add_argument("--params", default="params.yaml", help="parameters file (default params.yaml)")
    if extra:
        extra(ap)
    args = ap.parse_args(argv)
    params = load_params(args.params)
    _LOADED["params"] = params  # whose pipeline run a failure marks (run_stage)
    if per_model:
        run_settings(params, args.variant, args.rate)
    return args, params


def run_args(description: str, argv=None, extra=None):
    """``stage_args`` for a per-model stage; returns (args, params, run name)."""
    args, params = stage_args(description, argv, extra, per_model=True)
    return args, params, run_name(args.variant, args.rate)


def setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )


def write_json(path: Path, obj) -> None:
    from ..image_io import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def run_stage(fn) -> None:
    """Run a stage's main; expected failures become one line and exit status 1.

    Whatever the failure, MLflow runs the stage opened are marked FAILED first, so
    no run stays RUNNING forever. GRM_DEBUG=1 shows the traceback behind the line.
    """
    setup_logging()
    try:
        fn()
    except BaseException as e:
        line = _one_line(e)
        if not (isinstance(e, SystemExit) and e.code in (0, None)):
            _fail_runs(e, line)
        if line is None or debugging():
            raise
        print(f"stage error: {line}", file=sys.stderr)
        sys.exit(1)


def _fail_runs(e: BaseException, line: str | None) -> None:
    """The runs this stage opened, and its pipeline's run, marked FAILED: an MLflow that
    fails too (or is the failure) leaves them as they are, and the stage's own error is the
    one to report."""
    from . import mlflow_store

    tracking = sys.modules.get(f"{__package__}.tracking")  # loaded only if it opened runs
    if tracking is not None:
        tracking.fail_open_runs()
    params = _LOADED.get("params")
    if params is None or isinstance(e, mlflow_store.TrackingUnreachable):
        return
    stage = getattr(sys.modules["__main__"].__spec__, "name", None) or Path(sys.argv[0]).stem
    try:
        mlflow_store.fail_pipeline_run(
            Path.cwd(), shared_params(params), f"{stage}: {line or repr(e)}"
        )
    except Exception:  # noqa: BLE001
        pass


def _one_line(e: BaseException) -> str | None:
    """What to tell the user about an expected failure; None for a bug (traceback)."""
    if isinstance(e, (GrmError, FileNotFoundError, KeyError, ValueError, FloatingPointError)):
        return str(e.args[0] if isinstance(e, KeyError) and e.args else e)
    err = as_os_error(e)
    if err is None:
        return None
    where = f": {err.filename}" if err.filename else ""
    return f"{(err.strerror or str(err)).lower()}{where}"
