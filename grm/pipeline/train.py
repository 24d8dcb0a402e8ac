"""Training one rate point with Accelerate: one CPU process, one GPU or many nodes.

Launch the same script with ``accelerate launch`` or ``torchrun`` to go data-parallel.
Only the main process logs, validates and writes files; ``save_state`` checkpoints
go to a temporary folder that is renamed when complete, so an interrupted run always
resumes from an intact checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..checksum import sha256_file
from ..errors import GrmError, StorageError, os_failures
from ..image_io import empty_folder, share, to_tensor, write_atomic
from ..model_file import build, save_model
from ..precision import native_bf16
from ..settings import from_known_keys
from .allocator import reuse_freed_memory
from .averaging import WeightAverage
from .loss import RateDistortionLoss
from .provenance import code_digest, json_digest
from .shards import INDEX, read_images, resolve_shards, train_loader
from .stage import BOOKKEEPING

log = logging.getLogger("grm.train")


@dataclass
class TrainSettings:
    arch: str = "grm"  # grm | mbt2018 | bmshj2018-hyperprior
    model: object = "small"  # named config or dict with overrides (peers use its N, M)
    lmbda: float = 0.01
    metric: str = "mse"
    steps: int = 1000
    batch_size: int = 8
    crop: int = 64
    lr: float = 1e-4
    transform_lr_scale: float = 1 / 3
    aux_lr: float = 1e-3
    lr_drop_at: float = 0.8  # fraction of steps after which lr is divided by 10 (lr_schedule: step)
    lr_schedule: str = "step"  # step (÷10 at lr_drop_at) | cosine (to 1% of lr at the last step)
    grad_accum: int = 1
    mixed_precision: str = "fp32"  # fp32 | fp16 | bf16 | auto (bf16 where the hardware has it)
    clip: float = 1.0
    val_every: int = 100
    val_crop: int = 256
    log_every: int = 10
    crops_per_image: int = 4
    shuffle_buffer: int = 256  # crops shuffled together (in windows; see shards.CropStream)
    min_scale: float = 1.0  # each image shrunk by a random factor in [min_scale, 1] (1: never)
    workers: int = 0
    seed: int = 0
    keep_states: int = 2
    max_bad_steps: int = 20
    ema: float = 0.0  # weight-average decay (averaging.py): the average is validated and kept
    init_from: str = (
        ""  # weights to start from (the variant's base): a fine-tune, not a fresh start
    )

    @classmethod
    def from_dict(cls, d: dict) -> "TrainSettings":
        d = dict(d)
        # `dvc exp run -S` rewrites params.yaml without quotes, and YAML 1.1 reads a bare
        # `no` (Accelerate's word for fp32) as false: params say fp32, and the old
        # spellings are still understood.
        if d.get("mixed_precision") in (False, "no"):
            d["mixed_precision"] = "fp32"
        s = from_known_keys(cls, d, "training settings")
        if s.lr_schedule not in ("step", "cosine"):
            raise ValueError(f"train.lr_schedule must be step or cosine, not {s.lr_schedule!r}")
        if s.ema and not 0.0 < s.ema < 1.0:
            raise ValueError(f"train.ema must be 0 (off) or in (0, 1), not {s.ema}")
        if s.mixed_precision not in MIXED_PRECISION:
            raise ValueError(
                f"train.mixed_precision must be one of {MIXED_PRECISION}, not {s.mixed_precision!r}"
            )
        return s

    def defining(self) -> dict:
        """The settings that decide the trained weights (bookkeeping left out)."""
        return {k: v for k, v in asdict(self).items() if k not in BOOKKEEPING}


MIXED_PRECISION = ("fp32", "fp16", "bf16", "auto")


def resolve_precision(precision: str) -> str:
    """``auto`` → bf16 where the device computes in bf16 natively (a CUDA GPU with bf16, a CPU
    with AMX or AVX-512 BF16), else fp32: on an AVX2-only CPU, bf16 autocast is emulated and
    about 10x slower than fp32 (benchmarks/bench_train.py --precision)."""
    if precision != "auto":
        return precision
    cpu = (
        os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
        or not torch.cuda.is_available()
    )
    return "bf16" if native_bf16(torch.device("cpu" if cpu else "cuda")) else "fp32"


LOGGED = ("loss", "bpp", "mse", "aux")


def shard_identity(shards: str) -> dict:
    """What the training and validation data are: shard checksums, or the URL list when remote."""
    path = Path(shards)
    sums = (json.loads((path / INDEX).read_text()).get("sha256") or {}) if path.is_dir() else {}
    ident = {}
    for split in ("train", "val"):
        urls = resolve_shards(shards, split)
        if path.is_dir():
            ident[split] = {
                Path(u).name: sums.get(Path(u).name) or sha256_file(Path(u)) for u in urls
            }
        else:
            ident[split] = urls
    return ident


# What records runs in MLflow: it does not decide the weights, so editing it retrains nothing.
RECORDING = ("grm/pipeline/tracking.py", "grm/pipeline/mlflow_store.py")


def training_code_digest(root: Path) -> str:
    """Digest of the code the train stage runs, less tracking (it records, it does not decide)."""
    return code_digest(root, "stages/train.py", exclude=RECORDING)


def run_key(s: TrainSettings, shards: str, code: str) -> dict:
    """Everything a checkpoint depends on: a checkpoint is resumed only under the same key.

    A fine-tune's key holds its parent's content hash, so a retrained base restarts its
    rate points instead of resuming them on top of the old parent.
    """
    key = {"settings": s.defining(), "data": shard_identity(shards), "code": code}
    if s.init_from:
        key["parent"] = parent_digest(s.init_from)
    return key


def parent_digest(path: str) -> str:
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"train.init_from: {path} not found (train the variant's base first: dvc repro base)"
        )
    return sha256_file(Path(path))


def load_parent(model: nn.Module, path: str) -> None:
    """Start from another run's weights (a safetensors file: nothing is unpickled)."""
    from safetensors.torch import load_file
    from ..integer_model import PREFIX

    # An exported model file carries its integer entropy model too: built again at export.
    state = {k: v for k, v in load_file(path).items() if not k.startswith(PREFIX)}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"train.init_from: {path} does not fit this model: {e}") from None


class _Objective(nn.Module):
    """Model + loss in one forward, so DDP sees every parameter (the aux loss included)."""

    def __init__(self, model: nn.Module, criterion: RateDistortionLoss):
        super().__init__()
        self.model, self.criterion = model, criterion

    def forward(self, x):
        out = self.criterion(self.model(x), x)
        out["aux"] = self.model.aux_loss()
        out["total"] = out["loss"] + out["aux"]
        return out


def _param_groups(model: nn.Module, s: TrainSettings):
    transforms, entropy, aux = [], [], []
    for name, p in model.named_parameters():
        if name.endswith("quantiles"):
            aux.append(p)
        elif any(part in ("g_a", "g_s") for part in name.split(".")):
            transforms.append(p)
        else:
            entropy.append(p)
    return [
        {"params": entropy, "lr": s.lr},
        {"params": transforms, "lr": s.lr * s.transform_lr_scale},
        {"params": aux, "lr": s.aux_lr},
    ], entropy + transforms


@torch.no_grad()
def validate(
    model: nn.Module, images: list[np.ndarray], criterion: RateDistortionLoss, crop: int
) -> dict:
    """Eval-mode RD loss on centre crops: exact rates, like real coding; for grm also the
    entropy model's stage weights and reference similarity / confidence (``stats``)."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    sums: dict = {"loss": 0.0, "bpp": 0.0, "mse": 0.0}
    for img in images:
        h, w = img.shape[:2]
        top, left = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
        x = to_tensor(np.ascontiguousarray(img[top : top + crop, left : left + crop])).to(device)
        pred = model(x)
        out = {**criterion(pred, x), **pred.get("stats", {})}
        for k in set(sums) | set(pred.get("stats", {})):
            sums[k] = sums.get(k, 0.0) + float(out[k])
    model.train(was)
    res = {k: v / max(1, len(images)) for k, v in sums.items()}
    res["psnr"] = 10 * math.log10(1.0 / max(res["mse"], 1e-12))
    return res


def lr_factor(s: TrainSettings, step: int) -> float:
    """The learning rate at ``step`` as a fraction of ``s.lr``: a function of the step alone."""
    if s.lr_schedule == "cosine":
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(step, s.steps) / max(1, s.steps)))
    return 0.1 if step >= int(s.lr_drop_at * s.steps) else 1.0


def _finished_states(states: Path) -> list[Path]:
    """Complete checkpoints, oldest first (a ``.tmp`` one was interrupted while written)."""
    return sorted(p for p in states.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp"))


def _latest_state(states: Path) -> Path | None:
    done = _finished_states(states)
    return done[-1] if done else None


def is_complete(s: TrainSettings, shards: str, out: Path, code: str) -> bool:
    """Whether ``out`` holds the finished run of these settings: training them would only
    resume it and write its weights again."""
    s = dataclasses.replace(s, mixed_precision=resolve_precision(s.mixed_precision))
    out = Path(out)
    if not (out / "settings.json").is_file() or _key_changes(
        out / "settings.json", run_key(s, shards, code)
    ):
        return False
    latest = _latest_state(out / "state")
    return latest is not None and _trainer_meta(latest)["step"] >= s.steps


def _trainer_meta(state: Path) -> dict:
    """The trainer's own part of a saved state: step, bad steps, history."""
    return json.loads((state / "trainer.json").read_text())


@dataclass
class TrainResult:
    history: list = field(default_factory=list)
    steps: int = 0
    bad_steps: int = 0
    resumed_from: int = 0
    key_digest: str = ""
    restarted_because: list = field(default_factory=list)  # parts of the run key that changed


def _aside(out: Path) -> Path:
    """Where an older run of ``out`` waits. A folder that is a mount point (a scratch disk
    mounted per run, common on clusters) cannot be renamed: its old run waits inside it."""
    return out / ".previous" if os.path.ismount(out) else out.with_name(out.name + ".previous")


def _set_aside(out: Path, aside: Path) -> None:
    shutil.rmtree(aside, ignore_errors=True)
    if aside.parent != out:
        out.rename(aside)
        return
    aside.mkdir()
    for p in out.iterdir():
        if p != aside:
            p.rename(aside / p.name)


def _bring_back(aside: Path, out: Path) -> None:
    if aside.parent != out:
        shutil.rmtree(out, ignore_errors=True)
        aside.rename(out)
        return
    empty_folder(out, keep=aside)
    for p in aside.iterdir():
        p.rename(out / p.name)
    aside.rmdir()


def _start_folder(out: Path, key: dict, name: str) -> list[str]:
    """Make ``out`` hold the run of ``key``; return what changed if it held another run.

    A run of another key is set aside (``NAME.previous``), not deleted, until the new run
    has written its first checkpoint: a typo in a setting that fails at start (an
    unreachable shard URL, say) never costs the finished run, and putting the setting
    back resumes it.
    """
    aside = _aside(out)
    held = out.is_dir() and any(p != aside for p in out.iterdir())  # an empty mount holds none
    changes = _key_changes(out / "settings.json", key) if held else []
    if (
        (not out.exists() or changes)
        and aside.exists()
        and not _key_changes(aside / "settings.json", key)
    ):
        _bring_back(aside, out)
        log.info("%s: resuming the run set aside in %s", name, aside)
        return []
    if changes:
        log.warning(
            "%s: %s changed since the checkpoint in %s: training from step 0 (the old run waits "
            "in %s until the new one has a checkpoint)",
            name,
            " and ".join(changes),
            out,
            aside,
        )
        _set_aside(out, aside)
    return changes


def _key_changes(key_file: Path, key: dict) -> list[str]:
    """Which parts of the run key differ from the stored one (all of them if unreadable)."""
    try:
        old = json.loads(key_file.read_text())
    except (OSError, ValueError):
        return ["the run key (none stored)"]
    fresh = json.loads(json.dumps(key, default=str))
    names = {
        "settings": "settings",
        "data": "training data",
        "code": "training code",
        "parent": "parent model",
    }
    return [names[k] for k in key if not isinstance(old, dict) or old.get(k) != fresh[k]]


def train(
    name: str,
    s: TrainSettings,
    shards: str,
    out: Path,
    tracker_factory=None,
    trace_dir: Path | None = None,
    code: str = "",
) -> TrainResult:
    """Train until ``s.steps`` optimizer steps are done, resuming from ``out/state``.

    ``out`` is resumed only if it was written under the same ``run_key`` (settings,
    shard contents and ``code``, a digest of the training code); otherwise the run
    starts from scratch and says which of the three changed.
    """
    from accelerate.utils import set_seed

    # The run key holds the precision actually used, so a checkpoint written in bf16 on one
    # machine is not resumed in fp32 on another.
    s = dataclasses.replace(s, mixed_precision=resolve_precision(s.mixed_precision))
    acc = _accelerator(s)
    out = Path(out)
    result = _claim_folder(acc, out, run_key(s, shards, code), name)
    set_seed(s.seed)
    objective, opt, clip_params = _prepare(acc, s)
    base_lrs = [g["lr"] for g in opt.param_groups]
    # The main process alone validates and writes weights, so it alone keeps the average.
    average = (
        WeightAverage(acc.unwrap_model(objective).model, s.ema)
        if s.ema and acc.is_main_process
        else None
    )
    _resume(acc, out / "state", result, name, average)
    # The batch stream is a function of the seed and the step: it starts exactly where
    # the interrupted run stopped, without replaying what was already trained on.
    batches = train_loader(
        resolve_shards(shards, "train"),
        crop=s.crop,
        batch_size=s.batch_size,
        rank=acc.process_index,
        world=acc.num_processes,
        workers=s.workers,
        crops_per_image=s.crops_per_image,
        shuffle_buffer=s.shuffle_buffer,
        min_scale=s.min_scale,
        seed=s.seed,
        start_step=result.steps * s.grad_accum,
    )
    tracker = tracker_factory(result) if (tracker_factory and acc.is_main_process) else None
    if tracker:
        tracker.params({"rate_point": name, "world_size": acc.num_processes, **asdict(s)})
    books = _Bookkeeping(acc, objective, opt, s, out, name, result, tracker, shards, average)
    seen: set[str] = set()
    objective.train()
    try:
        while result.steps < s.steps:
            x, keys = _next_batch(batches, name, result.steps, out)
            seen.update(keys)
            o, stepped = _step(acc, objective, opt, base_lrs, clip_params, s, result.steps, x)
            if stepped is not None:  # None: a gradient-accumulation micro-batch
                books.after_step(o, stepped)
    finally:
        books.close()  # the progress bar ends before any error line is printed
    if trace_dir is not None:
        _trace(acc, objective, seen, trace_dir)
    acc.wait_for_everyone()
    acc.end_training()
    if tracker:  # FINISHED now, not when the report comes: a stopped pipeline leaves none RUNNING
        tracker.finish()
    return result


def _next_batch(batches, name: str, step: int, out: Path):
    """The next batch; a shard that vanished or was cut short mid-run is one line that says
    which, and what is kept (a loader worker's copy of the error carries its traceback)."""
    try:
        return next(batches)
    except (GrmError, OSError) as e:
        lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
        cause = lines[-1].split(": ", 1)[-1] if len(lines) > 1 else str(e)
        raise StorageError(
            cause,
            f"training {name} at step {step}",
            _kept_note(out / "state"),
            "restore the shards (dvc repro prepare rebuilds them) and rerun to resume",
        ) from None


class _Bookkeeping:
    """What happens between optimizer steps: the non-finite guard, progress, logging,
    validation and checkpoints (only the main process shows, logs and validates)."""

    def __init__(
        self,
        acc,
        objective,
        opt,
        s: TrainSettings,
        out: Path,
        name: str,
        result: TrainResult,
        tracker,
        shards: str,
        average: WeightAverage | None,
    ):
        self.acc, self.objective, self.opt, self.s, self.out = acc, objective, opt, s, out
        self.name, self.result, self.tracker, self.average = name, result, tracker, average
        self.model = acc.unwrap_model(objective).model  # unwrapped once, not every step
        main = acc.is_main_process
        self.val_images = (
            [img for _, img in read_images(resolve_shards(shards, "val"))] if main else []
        )
        self.progress = _progress_bar(s, result, name) if main else None
        self.consecutive_bad = 0
        self.t0, self.t_steps = time.perf_counter(), result.steps

    def after_step(self, o: dict, stepped: bool) -> None:
        self.result.steps += 1
        step, s = self.result.steps, self.s
        self._guard(stepped, step)
        if self.average is not None and stepped:
            self.average.update(self.model)
        if self.progress:
            self.progress.update(1)
            self.progress.set_postfix(
                loss=f"{o['loss'].detach().item():.3f}",
                bpp=f"{o['bpp'].detach().item():.3f}",
                refresh=False,
            )
        if _due(step, s.log_every, s.steps):
            self._log(o, step)
        if _due(step, s.val_every, s.steps):
            if self.acc.is_main_process:
                with _kept(self.acc, self.objective, self.average) as objective:
                    _validate(
                        objective,
                        self.val_images,
                        s,
                        step,
                        self.result,
                        self.tracker,
                        self.name,
                    )
            _checkpoint(
                self.acc, self.objective, self.out, step, self.result, s, self.average, self.name
            )
            if self.acc.is_main_process:
                shutil.rmtree(
                    _aside(self.out), ignore_errors=True
                )  # the new run has a checkpoint now

    def close(self) -> None:
        if self.progress:
            self.progress.close()

    def _guard(self, stepped: bool, step: int) -> None:
        """Stop, with a resumable checkpoint, after ``max_bad_steps`` non-finite steps in a row."""
        if stepped:
            self.consecutive_bad = 0
            return
        self.consecutive_bad += 1
        self.result.bad_steps += 1
        if self.consecutive_bad >= self.s.max_bad_steps:
            _checkpoint(
                self.acc,
                self.objective,
                self.out,
                step,
                self.result,
                self.s,
                self.average,
                self.name,
            )
            raise FloatingPointError(
                f"{self.consecutive_bad} consecutive non-finite steps at step {step}; "
                f"a resumable checkpoint was written to {self.out / 'state'}"
            )

    def _log(self, o: dict, step: int) -> None:
        # Every rank joins the reduction; the logged loss is the mean over ranks.
        mean = self.acc.reduce(
            torch.stack([o[k].detach().float() for k in LOGGED]), reduction="mean"
        )
        if self.tracker:
            rate = (step - self.t_steps) / max(1e-9, time.perf_counter() - self.t0)
            self.tracker.metrics(
                {
                    **{f"train/{k}": v for k, v in zip(LOGGED, mean.tolist())},
                    "train/lr": self.opt.param_groups[0]["lr"],
                    "train/steps_per_s": rate,
                    "train/bad_steps": self.result.bad_steps,
                },
                step,
            )


def _due(step: int, every: int, last: int) -> bool:
    return step % every == 0 or step == last


def _accelerator(s: TrainSettings):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs

    # Accelerate keeps one precision per process; a process that trains several runs (the
    # tests, bench_recipe's ladder) starts each afresh. The process group is kept.
    AcceleratorState._reset_state()
    acc = Accelerator(
        mixed_precision="no" if s.mixed_precision == "fp32" else s.mixed_precision,
        gradient_accumulation_steps=s.grad_accum,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False)],
    )
    if acc.device.type == "cpu":
        reuse_freed_memory()
    return acc


def _claim_folder(acc, out: Path, key: dict, name: str) -> TrainResult:
    """The main process makes ``out`` the folder of this run key (``_start_folder``)."""
    result = TrainResult(key_digest=json_digest(key))
    if acc.is_main_process:
        result.restarted_because = _start_folder(out, key, name)
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(
            out / "settings.json", json.dumps(key, indent=1, sort_keys=True, default=str).encode()
        )
    acc.wait_for_everyone()
    return result


def _prepare(acc, s: TrainSettings):
    """(objective, optimizer, parameters to clip), wrapped by Accelerate."""
    model = build(s.arch, s.model)
    # Fill the coder tables now: empty buffers share one null pointer, and save_state's
    # safetensors writer would drop them as "shared", so resuming could not load them.
    model.update(force=True)
    if s.init_from:
        load_parent(model, s.init_from)
    # Channels-last activations: oneDNN's convolutions (and GSDN's channel mixing as a
    # matrix product) run faster this way on CPU, and tensor cores prefer it on GPUs.
    model.to(memory_format=torch.channels_last)
    objective = _Objective(model, RateDistortionLoss(s.lmbda, s.metric))
    groups, clip_params = _param_groups(model, s)
    # The schedule is a function of the step counter alone (no scheduler object:
    # Accelerate's wrapper would step it once per rank), so it is the same on any
    # number of processes and continues exactly on resume.
    # Fused Adam: one kernel for all parameters, 3x faster than the per-tensor loop on CPU.
    objective, opt = acc.prepare(objective, torch.optim.Adam(groups, fused=True))
    return objective, opt, clip_params


def _resume(
    acc, states: Path, result: TrainResult, name: str, average: WeightAverage | None
) -> None:
    latest = _latest_state(states)
    if latest is None:
        return
    acc.load_state(str(latest))
    if average is not None:
        average.load(latest)
    meta = _trainer_meta(latest)
    result.steps, result.bad_steps, result.history = (
        meta["step"],
        meta["bad_steps"],
        meta["history"],
    )
    result.resumed_from = result.steps
    log.info("resumed %s from step %d", name, result.steps)


def _progress_bar(s: TrainSettings, result: TrainResult, name: str):
    from tqdm.auto import tqdm

    from .side_by_side import PROGRESS_ROW

    return tqdm(
        total=s.steps,
        initial=result.steps,
        desc=f"train {name}",
        unit="step",
        mininterval=2.0,
        dynamic_ncols=True,
        position=int(os.environ.get(PROGRESS_ROW, "0")),  # trainings side by side: one row each
    )


def _step(acc, objective, opt, base_lrs: list, clip_params: list, s: TrainSettings, step: int, x):
    """One micro-batch: (outputs, whether the optimizer stepped; None between accumulation
    steps)."""
    x = x.to(acc.device).contiguous(memory_format=torch.channels_last)
    stepped = None
    with acc.accumulate(objective):
        o = objective(x)
        acc.backward(o["total"])
        if acc.sync_gradients:
            for g, lr in zip(opt.param_groups, base_lrs):
                g["lr"] = lr * lr_factor(s, step)
            # Gradients are already all-reduced, so every rank reaches the same verdict.
            norm = acc.clip_grad_norm_(clip_params, s.clip if s.clip > 0 else float("inf"))
            stepped = bool(torch.isfinite(torch.as_tensor(norm))) or s.mixed_precision == "fp16"
            if stepped:  # fp16: the grad scaler itself skips inf steps
                opt.step()
            opt.zero_grad(set_to_none=True)
    return o, stepped


def _validate(
    objective: "_Objective",
    val_images: list,
    s: TrainSettings,
    step: int,
    result: TrainResult,
    tracker,
    name: str,
) -> None:
    v = validate(objective.model, val_images, objective.criterion, s.val_crop)
    v["step"] = step
    result.history.append(v)
    log.info(
        "%s step %d: val loss %.4f bpp %.4f psnr %.2f", name, step, v["loss"], v["bpp"], v["psnr"]
    )
    if tracker:
        tracker.metrics({f"val/{k}": x for k, x in v.items() if k != "step"}, step)


@contextlib.contextmanager
def _kept(acc, objective, average: WeightAverage | None):
    """The unwrapped objective with the weights a run keeps: the average if there is one."""
    unwrapped = acc.unwrap_model(objective)
    if average is None:
        yield unwrapped
        return
    with average.applied(unwrapped.model):
        yield unwrapped


def _checkpoint(
    acc,
    objective,
    out: Path,
    step: int,
    result: TrainResult,
    s: TrainSettings,
    average: WeightAverage | None,
    name: str,
) -> None:
    """The kept weights for selection + a full resumable state, both written atomically.

    A failed write (disk full, say) leaves the last complete state as it was, says which
    step that is, and removes its own half-written files."""
    states = out / "state"
    tmp = states / f"step-{step:08d}.tmp"
    try:
        with os_failures(
            f"saving step {step} of {name} to",
            out,
            kept=lambda: _kept_note(states),
            then="to resume",
        ):
            _write_checkpoint(acc, objective, out, step, result, s, average, tmp)
    except StorageError:
        if acc.is_main_process:  # half-written files of no state only hold space
            shutil.rmtree(tmp, ignore_errors=True)
            (out / "weights" / f"step-{step:08d}.safetensors").unlink(missing_ok=True)
        raise


def _kept_note(states: Path) -> str:
    latest = _latest_state(states)
    return (
        f"the last complete state is step {_trainer_meta(latest)['step']}"
        if latest is not None
        else "no complete state yet"
    )


def _write_checkpoint(acc, objective, out, step, result, s, average, tmp) -> None:
    states, weights = out / "state", out / "weights"
    if acc.is_main_process:
        with _kept(acc, objective, average) as kept:
            save_model(
                kept.model,
                weights / f"step-{step:08d}.safetensors",
                name=f"step-{step}",
                coder=False,
            )
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    acc.wait_for_everyone()
    acc.save_state(str(tmp))
    acc.wait_for_everyone()
    if acc.is_main_process:
        if average is not None:
            average.save(tmp)
        # The validation history travels inside the checkpoint, so a kill between the
        # rename and the history.json update cannot lose an entry.
        write_atomic(
            tmp / "trainer.json",
            json.dumps(
                {"step": step, "bad_steps": result.bad_steps, "history": result.history}
            ).encode(),
        )
        share(tmp)  # safetensors writes 0600; a colleague reads checkpoints like the rest
        final = states / f"step-{step:08d}"
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        write_atomic(out / "history.json", json.dumps(result.history, indent=1).encode())
        for old in _finished_states(states)[: -s.keep_states]:
            shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()


def _trace(acc, objective, seen: set, trace_dir: Path) -> None:
    """Per-rank audit: which images this rank saw and a digest of its weights."""
    trace_dir.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    for k, v in sorted(acc.unwrap_model(objective).model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().numpy().tobytes())
    (trace_dir / f"rank{acc.process_index}.json").write_text(
        json.dumps(
            {
                "rank": acc.process_index,
                "world": acc.num_processes,
                "keys": sorted(seen),
                "weights": h.hexdigest(),
            }
        )
    )
