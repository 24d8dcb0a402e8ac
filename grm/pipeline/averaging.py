"""An exponential moving average of the weights, the model that is validated and kept.

Under a constant, high learning rate the last weights carry the noise of the last steps;
their average over a window does not (Polyak averaging). The window grows with the run:
the decay is ``min(decay, (1 + t) / (10 + t))`` after ``t`` updates, so a 230-step
fine-tune averages over its last ~30 steps and a 2,500-step base over its last ~300,
and the average starts at the first weights, never at zeros.

Only the floating-point parameters are averaged; buffers (the coder's tables) are built
from them at export. The average is saved as safetensors beside each checkpoint.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
import torch.nn as nn

FILE = "average.safetensors"


class WeightAverage:
    def __init__(self, model: nn.Module, decay: float):
        self.decay, self.updates = decay, 0
        self.average = {n: p.detach().clone() for n, p in model.named_parameters()}

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        weight = 1.0 - self.current_decay()
        names = list(self.average)
        params = dict(model.named_parameters())
        torch._foreach_lerp_(
            [self.average[n] for n in names], [params[n].detach() for n in names], weight
        )

    @contextlib.contextmanager
    def applied(self, model: nn.Module):
        """The model holds the averaged weights inside the block, its own ones after it."""
        params = dict(model.named_parameters())
        own = {n: p.detach().clone() for n, p in params.items()}
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(self.average[n])
        try:
            yield model
        finally:
            with torch.no_grad():
                for n, p in params.items():
                    p.copy_(own[n])

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        tensors = {n: t.contiguous() for n, t in self.average.items()}
        save_file(tensors, str(folder / FILE), metadata={"updates": str(self.updates)})

    def load(self, folder: Path) -> None:
        """Continue the average saved in a checkpoint (safetensors: nothing is unpickled)."""
        from safetensors import safe_open

        path = folder / FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the checkpoint has no weight average (train.ema)")
        with safe_open(str(path), framework="pt") as f:
            self.updates = int(f.metadata()["updates"])
            for n in self.average:
                self.average[n].copy_(f.get_tensor(n))
