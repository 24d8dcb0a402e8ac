"""Where the stages read and write, relative to the repository root.

dvc.yaml names the same paths in each stage's deps and outs; tests/test_stage.py checks
that every data path there is one of these, so a stage script and its DVC declaration
cannot drift apart.
"""

from pathlib import Path

DATA = Path("data")
PHOTOS = DATA / "photos"  # the default training photos, committed (prepare.source)
EVAL_PHOTOS = DATA / "eval_photos"  # the evaluation photos by kind, committed (prepare.eval_source)
SHARDS = DATA / "shards"  # prepare → WebDataset shards
EVAL_IMAGES = DATA / "eval_images"  # prepare → evaluation photos (PNG)
PREPARE_SUMMARY = DATA / "prepare_summary.json"
CHECKPOINTS = DATA / "checkpoints"  # resumable training runs (not cached by DVC)
BASE_RUNS = CHECKPOINTS / "bases"  # base → the variants' base runs, one folder each
RATE_RUNS = CHECKPOINTS / "rates"  # train → the rate points' runs, one folder each (VARIANT-RATE)
BASES = DATA / "bases"  # base → each variant's warm start
MODELS = DATA / "models"  # export → model files
SELECTION = DATA / "selection.json"  # export → the checkpoint each model is, and its validation
DECODED = DATA / "decoded"  # evaluate → decoded photos
EVAL = DATA / "eval"  # evaluate → one JSON per model
CLASSIC = DATA / "classic"  # classic → the codecs' files
EVAL_CLASSIC = DATA / "eval_classic"  # classic → one JSON per codec
REPORT = DATA / "report"  # report → tables, plots, figures

ALL = (
    PHOTOS,
    EVAL_PHOTOS,
    SHARDS,
    EVAL_IMAGES,
    PREPARE_SUMMARY,
    CHECKPOINTS,
    BASE_RUNS,
    RATE_RUNS,
    BASES,
    MODELS,
    SELECTION,
    DECODED,
    EVAL,
    CLASSIC,
    EVAL_CLASSIC,
    REPORT,
)
