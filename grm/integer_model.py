"""The portable entropy model: everything that decides a probability table, in integers.

At export, GRM's hyper synthesis h_s, local context, reference feature and the three
parameter networks become exact integer layers (``integer_ops``) and the mixture's
transcendental functions become lookup tables (``integer_tables``); both are stored in
the model file. Encoder and decoder evaluate this model, so a .grm file decodes to the
same latents on any machine. Training stays float; g_a and g_s stay float (they only
move reconstruction pixels by rounding noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .integer_ops import (
    ACT_LIMIT,
    FRAC,
    WEIGHT_MAX,
    QLayer,
    conv2d,
    conv_transpose2d,
    linear,
    requantise,
)
from .integer_tables import TABLE_NAMES, Tables, build_tables
from .strides import STRIDE, Y_STRIDE

MAX_SYMBOL = 1 << 15  # ŷ is clamped to ±MAX_SYMBOL so every value has a code
PREFIX = "coder."
VERSION = 1  # of the integer arithmetic; stored with the tensors


def _net_convs(net) -> list[torch.nn.Conv2d]:
    return [m for m in net if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]


@dataclass(frozen=True)
class Layout:
    """What the coder needs besides the numbers: which ŷ positions each layer reads and
    in which order positions are coded. The coder reads it from here alone, so whether a
    file decodes never depends on the attribute names of the float ``nn.Module``."""

    channels: int  # M
    reference: bool  # the global reference is used
    only_last: bool  # likelihood of the final stage only
    decode_order: str  # wavefront | raster
    ctx_taps: tuple[tuple[int, int], ...]  # (dy, dx) of the local context's causal taps
    ref_taps: tuple[tuple[int, int], ...]  # (dy, dx) of the reference feature's taps
    upsample: int  # ŷ positions per ẑ position, along each side

    @classmethod
    def of(cls, model) -> "Layout":
        cfg = model.config
        return cls(
            cfg.M,
            cfg.reference == "on",
            cfg.likelihood == "final-stage",
            cfg.decode_order,
            tuple(model.context.causal_taps()[1]),
            tuple(model.ref_conv.causal_taps()[1]),
            STRIDE // Y_STRIDE,
        )


class IntegerEntropyModel:
    def __init__(self, layers: dict[str, QLayer], tables: Tables, layout: Layout):
        self.layers, self.tables, self.layout = layers, tables, layout
        # The three parameter networks side by side, layer by layer: their products stay
        # separate, their requantisation runs once on the three stacked outputs.
        self._stacked = []
        for i in range(3):
            stage = [layers[f"s{k}.{i}"] for k in (1, 2, 3)]
            if len({layer.weight.shape[0] for layer in stage}) != 1:
                raise ValueError(f"the parameter networks' layer {i} differ in width")
            self._stacked.append(
                (
                    stage,
                    torch.stack([layer.mult for layer in stage]),
                    torch.stack([layer.mult_neg for layer in stage]),
                )
            )

    @property
    def M(self) -> int:
        return self.layout.channels

    @property
    def reference(self) -> bool:
        return self.layout.reference

    @property
    def only_last(self) -> bool:
        return self.layout.only_last

    # -- export and storage ------------------------------------------------------------
    @classmethod
    def export(cls, model, weight_max: int = WEIGHT_MAX) -> "IntegerEntropyModel":
        """Quantise a trained GRM's entropy path and build the lookup tables (weights in
        ±``weight_max``: 8-bit by default, one int8 digit; ``bench_weight_bits.py`` measures
        what 16-bit ones would save)."""
        layers = {}
        hs = _net_convs(model.h_s)
        for i, conv in enumerate(hs):
            w = (
                conv.weight.transpose(0, 1)
                if isinstance(conv, torch.nn.ConvTranspose2d)
                else conv.weight
            )
            layers[f"hs{i}"] = QLayer.quantise(
                w, conv.bias, FRAC, ACT_LIMIT, i < len(hs) - 1, weight_max
            )
        for name, masked in (("ctx", model.context), ("ref", model.ref_conv)):
            w, _ = masked.causal_taps()
            layers[name] = QLayer.quantise(w, masked.bias, 0, MAX_SYMBOL, False, weight_max)
        for k, net in enumerate((model.stage1, model.stage2, model.stage3), 1):
            convs = _net_convs(net)
            for i, conv in enumerate(convs):
                layers[f"s{k}.{i}"] = QLayer.quantise(
                    conv.weight.flatten(1),
                    conv.bias,
                    FRAC,
                    ACT_LIMIT,
                    i < len(convs) - 1,
                    weight_max,
                )
        return cls(layers, Tables(build_tables()), Layout.of(model))

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {f"{PREFIX}version": torch.tensor([VERSION])}
        for name, layer in self.layers.items():
            out.update(layer.tensors(f"{PREFIX}{name}"))
        out.update({f"{PREFIX}table.{k}": v for k, v in self.tables.tensors().items()})
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], model) -> "IntegerEntropyModel":
        version = tensors.get(f"{PREFIX}version")
        if version is None or int(version[0]) != VERSION:
            raise ValueError(
                f"integer entropy model version {None if version is None else int(version[0])}, "
                f"this grm reads {VERSION}"
            )
        names = {k[len(PREFIX) :].rsplit(".", 1)[0] for k in tensors if k.endswith(".mult")}
        layers = {n: QLayer.from_tensors(tensors, PREFIX + n) for n in names}
        tables = Tables(
            {
                k: tensors[f"{PREFIX}table.{k}"]
                for k in TABLE_NAMES
                if f"{PREFIX}table.{k}" in tensors
            }
        )
        expected = {"hs0", "hs1", "hs2", "ctx", "ref"} | {
            f"s{k}.{i}" for k in (1, 2, 3) for i in range(3)
        }
        if names != expected:
            raise ValueError(
                f"integer entropy model layers {sorted(names)} do not match {sorted(expected)}"
            )
        return cls(layers, tables, Layout.of(model))

    def to(self, device) -> "IntegerEntropyModel":
        """The same model with its integers on ``device`` (exact on any of them)."""
        if self.tables.phi.device == torch.device(device):
            return self
        return IntegerEntropyModel(
            {k: v.to(device) for k, v in self.layers.items()}, self.tables.to(device), self.layout
        )

    # -- evaluation ---------------------------------------------------------------------
    def hyper(self, z_hat: torch.Tensor) -> torch.Tensor:
        """ẑ (1, N, h/4, w/4) → ψ as (h·w, 2M) rows of integers (exact in float32)."""
        x = torch.round(z_hat[0].double() * 2**FRAC).clamp_(-ACT_LIMIT, ACT_LIMIT).float()
        x = conv_transpose2d(x, self.layers["hs0"])
        x = conv_transpose2d(x, self.layers["hs1"])
        return conv2d(x, self.layers["hs2"], as_rows=True)

    def local(self, taps: torch.Tensor) -> torch.Tensor:
        """ŷ at the causal 5×5 taps (P, T·M) → φ_loc (P, 2M)."""
        return linear(taps.double(), self.layers["ctx"])

    def reference_feature(self, taps: torch.Tensor) -> torch.Tensor:
        """ŷ at the reference's 3×3 causal taps (P, T·M) → φ_ref (P, 2M)."""
        return linear(taps.double(), self.layers["ref"])

    def stages(
        self,
        phi_loc: torch.Tensor,
        phi_ref: torch.Tensor | None = None,
        psi: torch.Tensor | None = None,
        nets: tuple[int, ...] = (0, 1, 2),
    ):
        """The parameter networks ``nets`` (0: stage 1 …) → (logits, means, σ indices),
        each (len(nets), P, M) int.

        Stage k reads the first 2M·k columns of [φ_loc, φ_ref, ψ], so stage 1 needs φ_loc
        only: the encoder evaluates it before the reference search, which needs it."""
        x = torch.cat([t for t in (phi_loc, phi_ref, psi) if t is not None], 1)  # float64
        inputs = [x[:, : 2 * self.M * (k + 1)] for k in nets]
        pick = list(nets)
        for stage, mult, neg in self._stacked:
            layers = [stage[k] for k in pick]
            acc = torch.stack([layer.product(inp) for inp, layer in zip(inputs, layers)], 1)
            leaky = any(layer.leaky for layer in layers)
            x = requantise(acc, mult[pick], neg[pick], leaky)  # P, len(nets), width
            inputs = x.unbind(1)
        logits, means, log_scales = x.transpose(0, 1).long().split(self.M, -1)
        return logits, means, self.tables.scale_index(log_scales)
