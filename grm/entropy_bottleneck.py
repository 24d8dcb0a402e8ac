"""compressai's factorised prior (z), without the rest of compressai, and the model base
that keeps its coding tables.

``import compressai`` runs a package ``__init__`` that imports every subpackage, the
point-cloud datasets among them, and with them torch-geometric and torch._dynamo: 2.6 s
on 2 cores beyond torch itself, paid by every ``grm`` command and every stage process.
grm needs three modules of it (``entropy_models``, ``ops`` and the compiled rANS coder).
So the package is registered without running its ``__init__``, and scipy.stats (0.5 s,
for a Gaussian quantile only compressai's GaussianConditional asks) is imported on first
use; what is left imports in 0.1 s. ``whole_compressai()`` runs the package's own
``__init__`` later, in place, for the code that wants all of it (the compressai peers,
mbt2018 and bmshj2018).
"""

from __future__ import annotations

import importlib.util
import sys
import types

import torch
import torch.nn as nn

# EntropyBottleneck.update/compress read these package-level names at call time.
_ENTROPY_CODER = "ans"


def _partial_package() -> None:
    if "compressai" in sys.modules:
        return
    spec = importlib.util.find_spec("compressai")
    if spec is None:
        raise ImportError("compressai is not installed")
    pkg = importlib.util.module_from_spec(spec)
    pkg.get_entropy_coder = lambda: _ENTROPY_CODER
    pkg.available_entropy_coders = lambda: [_ENTROPY_CODER]
    pkg._grm_partial = True
    sys.modules["compressai"] = pkg


def whole_compressai() -> None:
    """Run compressai's own ``__init__`` (all subpackages) if only the core is loaded."""
    pkg = sys.modules.get("compressai")
    if pkg is None:
        import compressai  # noqa: F401

        return
    if getattr(pkg, "_grm_partial", False):
        pkg._grm_partial = False
        pkg.__spec__.loader.exec_module(pkg)


class _ImportedOnFirstUse(types.ModuleType):
    """Stands in for a module until one of its names is read, then imports it for real."""

    def __getattr__(self, attr):
        parent, _, child = self.__name__.rpartition(".")
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        real = importlib.import_module(self.__name__)
        setattr(sys.modules[parent], child, real)
        return getattr(real, attr)


def _on_first_use(name: str) -> None:
    """compressai's entropy models import scipy.stats (0.5 s, most of it parsing scipy's
    docstrings) for a Gaussian quantile only its GaussianConditional asks for."""
    if name in sys.modules or importlib.util.find_spec(name) is None:
        return
    parent, _, child = name.rpartition(".")
    stand_in = _ImportedOnFirstUse(name)
    sys.modules[name] = stand_in
    setattr(importlib.import_module(parent), child, stand_in)


_partial_package()
_on_first_use("scipy.stats")

from compressai.entropy_models import EntropyBottleneck  # noqa: E402
from compressai.ops.parametrizers import NonNegativeParametrizer  # noqa: E402

__all__ = ["CodingModel", "EntropyBottleneck", "NonNegativeParametrizer", "whole_compressai"]

_TABLES = ("_quantized_cdf", "_offset", "_cdf_length")


class CodingModel(nn.Module):
    """What grm's model needs of compressai's ``CompressionModel``: the factorised prior's
    auxiliary loss, its CDF tables built on demand, and loading weights whose tables have
    another size than the freshly built model's (empty before ``update``)."""

    def aux_loss(self) -> torch.Tensor:
        return sum(m.loss() for m in self.modules() if isinstance(m, EntropyBottleneck))

    def update(self, force: bool = False) -> bool:
        updated = False
        for m in self.modules():
            if isinstance(m, EntropyBottleneck):
                updated |= m.update(force=force)
        return updated

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        for name, m in self.named_modules():
            if not isinstance(m, EntropyBottleneck):
                continue
            for table in _TABLES:
                key = f"{name}.{table}"
                if key in state_dict:
                    getattr(m, table).resize_(state_dict[key].shape)
        return nn.Module.load_state_dict(self, state_dict, strict=strict, assign=assign)
