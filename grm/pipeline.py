"""Helpers the DVC stage scripts share: parameters, paths, logging, error reporting."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import yaml

from .errors import GrmError

SHARED_SECTIONS = ("prepare", "train")


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
    """What defines a pipeline run: everything but the list of rate points."""
    return {k: params.get(k) for k in SHARED_SECTIONS}


def rate_point(params: dict, name: str) -> dict:
    if name not in params["rates"]:
        raise KeyError(f"unknown rate point {name!r}; params.yaml has {sorted(params['rates'])}")
    return params["rates"][name]


def variants(params: dict) -> dict:
    """Models trained at every rate point; the default is grm alone."""
    return params.get("variants") or {"grm": {"arch": "grm"}}


def run_name(variant: str, rate: str) -> str:
    return f"{variant}-{rate}"


def run_settings(params: dict, variant: str, rate: str) -> tuple[dict, str]:
    """Training settings of one (variant, rate point): train ⊕ variant ⊕ rate point."""
    all_variants = variants(params)
    if variant not in all_variants:
        raise KeyError(f"unknown variant {variant!r}; params.yaml has {sorted(all_variants)}")
    section = dict(params.get("train") or {})
    shards = section.pop("shards", "data/shards")
    v = {k: val for k, val in (all_variants[variant] or {}).items() if k != "label"}
    return {**section, **v, **rate_point(params, rate)}, shards


def run_args(description: str, argv=None, extra=None):
    """Parse VARIANT RATE (plus any extra options) for a per-model stage.

    Returns (args, params, run name); unknown names fail here with a clear message.
    """
    import argparse
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variant", help="model variant (a key of 'variants' in params.yaml)")
    ap.add_argument("rate", help="rate point (a key of 'rates' in params.yaml)")
    ap.add_argument("--params", default="params.yaml")
    if extra:
        extra(ap)
    args = ap.parse_args(argv)
    params = load_params(args.params)
    run_settings(params, args.variant, args.rate)
    return args, params, run_name(args.variant, args.rate)


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")


def write_json(path: Path, obj) -> None:
    from .image_io import write_atomic
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def run_stage(fn) -> None:
    """Run a stage's main; expected failures become one line and exit status 1."""
    setup_logging()
    try:
        fn()
    except (GrmError, FileNotFoundError, KeyError, ValueError, FloatingPointError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"stage error: {msg}", file=sys.stderr)
        sys.exit(1)
