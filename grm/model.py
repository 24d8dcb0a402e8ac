"""The GRM model: GSDN transforms, hyperprior, local context, global reference and
the three cascaded parameter networks whose outputs form the mixture entropy model.

``forward`` is the parallel training/estimation path (float); real coding is in
``grm.latent_coder``, which evaluates the same networks one position at a time in
exact integer arithmetic (``grm.integer_model``), so files decode on any machine.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from .entropy_bottleneck import CodingModel, EntropyBottleneck
from .layers import MaskedConv2d, make_norm
from .mixture import gaussian_bin_prob, mixture_likelihood, split_stage
from .reference import SIM_MIN, causal_search, descriptors, gather_positions, order_keys
from .image_io import unit_float
from .strides import STRIDE, Y_STRIDE
from .settings import from_known_keys
from .tiling import TILE, tiled

REF_USED = 0.5  # S·U at or above which a reference counts as used (bias ≥ −log 2)


@dataclass(frozen=True)
class GRMConfig:
    N: int = 192
    M: int = 384
    hidden: int = 0  # width of the parameter networks; 0 means 3·M
    norm: str = "gsdn"  # gsdn | gdn
    reference: str = "on"  # on | off
    likelihood: str = "mixture"  # mixture | final-stage
    decode_order: str = "wavefront"  # wavefront | raster (same search causality in training)

    def __post_init__(self):
        # YAML reads a bare on/off as a boolean: accept it.
        if isinstance(self.reference, bool):
            object.__setattr__(self, "reference", "on" if self.reference else "off")
        for key, allowed in (
            ("norm", ("gsdn", "gdn")),
            ("reference", ("on", "off")),
            ("likelihood", ("mixture", "final-stage")),
            ("decode_order", ("raster", "wavefront")),
        ):
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, got {getattr(self, key)!r}")
        if self.N < 1 or self.M < 1 or self.hidden < 0:
            raise ValueError("N and M must be positive and hidden non-negative")

    @property
    def width(self) -> int:
        return self.hidden or 3 * self.M

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GRMConfig":
        return from_known_keys(cls, d, "model config keys")


CONFIGS = {
    "paper": GRMConfig(N=192, M=384),
    "small": GRMConfig(N=64, M=96),
    # The CPU default: in a short CPU budget, the steps its speed buys beat small's
    # capacity (README, "Model quality").
    "compact": GRMConfig(N=48, M=64),
    "tiny": GRMConfig(N=16, M=24, hidden=48),
}


def config_from(spec) -> GRMConfig:
    """A named config ('paper', 'small', 'compact', 'tiny'), optionally with overrides in a dict."""
    if isinstance(spec, GRMConfig):
        return spec
    if isinstance(spec, str):
        spec = {"base": spec}
    spec = dict(spec)
    base = spec.pop("base", None)
    if base is not None and base not in CONFIGS:
        raise ValueError(f"unknown model config {base!r}; choose from {sorted(CONFIGS)}")
    start = CONFIGS[base].to_dict() if base else {}
    start.update(spec)
    return GRMConfig.from_dict(start)


def _conv(cin, cout, k=5, stride=2):
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)


def _deconv(cin, cout, k=5, stride=2):
    return nn.ConvTranspose2d(
        cin, cout, k, stride=stride, padding=k // 2, output_padding=stride - 1
    )


def _param_net(cin, hidden, cout):
    return nn.Sequential(
        nn.Conv2d(cin, hidden, 1),
        nn.LeakyReLU(inplace=True),
        nn.Conv2d(hidden, hidden, 1),
        nn.LeakyReLU(inplace=True),
        nn.Conv2d(hidden, cout, 1),
    )


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    """Channels-last: oneDNN's convolutions run faster on CPU this way. Only the
    coding paths use it; ŷ equality is guaranteed by the shared coding loop, not by
    the transforms."""
    return x.contiguous(memory_format=torch.channels_last)


def device_of(model: nn.Module) -> torch.device:
    """Where a model's weights live: coding moves its inputs there."""
    return next(model.parameters()).device


def round_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


class GRM(CodingModel):
    """Global Reference Model (Qian et al., "Learning Accurate Entropy Model with Global
    Reference for Image Compression", ICLR 2021) with GSDN transforms::

        x ─g_a─▶ y ─round─▶ ŷ ───────────────────────────────────────────▶ g_s ─▶ x̂
                 │          ├─ context (5×5 masked)  ─▶ φ_loc ─▶ stage 1 ─┐
                 │          ├─ reference search (S, U) ─▶ φ_ref ─▶ stage 2 ─┼─▶ mixture
                 └─ h_a ─▶ ẑ ─ h_s ─▶ ψ ────────────────────────▶ stage 3 ─┘   p(ŷ)

    Stage 1 reads φ_loc, stage 2 φ_loc and φ_ref, stage 3 both and ψ; each gives one
    Gaussian per latent, and the three form a mixture, stage 2's weight biased by
    log S + log U of the reference it used (the search reads a detached ŷ). The integer
    twin of this entropy model, used by real coding, is ``grm.integer_model`` /
    ``grm.latent_coder``.
    """

    ARCH = "grm"
    # Transform tile side in latent positions (grm.tiling): peak memory, never the bytes.
    tile = TILE
    # The transforms' float format when coding (grm.precision; the codec sets it). The
    # entropy model is integer arithmetic either way: files decode across formats.
    transform_precision = "fp32"

    def __init__(self, config: GRMConfig | str | dict = "small"):
        super().__init__()
        cfg = self.config = config_from(config)
        N, M, H = cfg.N, cfg.M, cfg.width
        self.g_a = nn.Sequential(
            _conv(3, N),
            make_norm(cfg.norm, N),
            _conv(N, N),
            make_norm(cfg.norm, N),
            _conv(N, N),
            make_norm(cfg.norm, N),
            _conv(N, M),
        )
        self.g_s = nn.Sequential(
            _deconv(M, N),
            make_norm(cfg.norm, N, True),
            _deconv(N, N),
            make_norm(cfg.norm, N, True),
            _deconv(N, N),
            make_norm(cfg.norm, N, True),
            _deconv(N, 3),
        )
        self.h_a = nn.Sequential(
            _conv(M, N, 3, 1),
            nn.LeakyReLU(inplace=True),
            _conv(N, N),
            nn.LeakyReLU(inplace=True),
            _conv(N, N),
        )
        self.h_s = nn.Sequential(
            _deconv(N, M),
            nn.LeakyReLU(inplace=True),
            _deconv(M, M * 3 // 2),
            nn.LeakyReLU(inplace=True),
            _conv(M * 3 // 2, 2 * M, 3, 1),
        )
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.context = MaskedConv2d(M, 2 * M, 5, "A")
        self.ref_conv = MaskedConv2d(M, 2 * M, 3, "B")
        self.stage1 = _param_net(2 * M, H, 3 * M)
        self.stage2 = _param_net(4 * M, H, 3 * M)
        self.stage3 = _param_net(6 * M, H, 3 * M)

    def export_config(self) -> dict:
        return self.config.to_dict()

    # -- entropy model, parallel form -------------------------------------------------
    def stage_mask(self) -> torch.Tensor | None:
        """Additive logit mask that keeps only stage 3 for the final-stage ablation."""
        if self.config.likelihood == "mixture":
            return None
        return torch.tensor([float("-inf"), float("-inf"), 0.0])

    def entropy_parameters(self, y_hat: torch.Tensor, psi: torch.Tensor):
        """Mixture (logits, means, scales), each (3, B, M, H, W), for integer ŷ, and the
        similarity and confidence of each position's reference (None without one)."""
        M = self.config.M
        b, _, h, w = y_hat.shape
        phi_loc = self.context(y_hat)
        s1 = self.stage1(phi_loc)
        chosen = None
        if self.config.reference == "on":
            keys = order_keys(h, w, self.config.decode_order, y_hat.device)
            # As in the authors' released code, the search and the reference feature read
            # a detached ŷ: the encoder is not trained through S or φ_ref.
            y_ref = y_hat.detach()
            ref, sim, has_ref = causal_search(descriptors(y_ref), keys)
            phi_ref = gather_positions(self.ref_conv(y_ref), ref) * has_ref.unsqueeze(1)
            phi_ref = phi_ref.view(b, 2 * M, h, w)
            with torch.no_grad():
                l1, m1, sc1 = split_stage(s1.detach(), M, 1)
                conf = gaussian_bin_prob(y_hat.detach(), m1, sc1).mean(1).flatten(1)  # B, HW
                conf = torch.gather(conf, 1, ref).clamp(SIM_MIN, 1.0)
                conf = torch.where(has_ref, conf, torch.full_like(conf, SIM_MIN))
            bias = (torch.log(sim) + torch.log(conf)).view(b, 1, h, w)
            chosen = {"similarity": sim[has_ref], "confidence": conf[has_ref]}
        else:
            phi_ref = torch.zeros_like(phi_loc)
            bias = 0.0
        s2 = self.stage2(torch.cat([phi_loc, phi_ref], 1))
        s3 = self.stage3(torch.cat([phi_loc, phi_ref, psi], 1))
        parts = [split_stage(s, M, 1) for s in (s1, s2, s3)]
        logits = torch.stack([parts[0][0], parts[1][0] + bias, parts[2][0]])
        mask = self.stage_mask()
        if mask is not None:
            logits = logits + mask.to(logits).view(3, 1, 1, 1, 1)
        means = torch.stack([p[1] for p in parts])
        scales = torch.stack([p[2] for p in parts])
        return logits, means, scales, chosen

    # -- training / estimation ---------------------------------------------------------
    def forward(self, x: torch.Tensor) -> dict:
        """Reconstruction and likelihoods; noisy rates in train mode, exact rates in eval.

        Any size works: the input is padded like ``compress`` pads it, so the eval-mode
        likelihoods estimate the real bitstream.
        """
        height, width = x.shape[-2:]
        y = self.g_a(self.pad(x))
        z = self.h_a(y)
        z_hat, z_lik = self.entropy_bottleneck(z)
        psi = self.h_s(z_hat)
        y_hat = round_ste(y)
        y_rate = y + torch.empty_like(y).uniform_(-0.5, 0.5) if self.training else torch.round(y)
        logits, means, scales, chosen = self.entropy_parameters(y_hat, psi)
        y_lik = mixture_likelihood(y_rate, logits, means, scales)
        x_hat = self.g_s(y_hat)[..., :height, :width]
        out = {"x_hat": x_hat, "likelihoods": {"y": y_lik, "z": z_lik}}
        if not self.training:
            out["stats"] = self.entropy_stats(logits, chosen)
        return out

    @staticmethod
    @torch.no_grad()
    def entropy_stats(logits: torch.Tensor, chosen: dict | None) -> dict:
        """Mean mixture weight of each stage (stage 1 feeds the confidence U: if its weight
        collapses, U drifts) and the mean similarity / confidence of chosen references."""
        weights = torch.softmax(logits, 0).flatten(1).mean(1)
        stats = {f"weight_stage{i + 1}": float(w) for i, w in enumerate(weights)}
        if chosen is not None and chosen["similarity"].numel():
            stats.update({f"ref_{k}": float(v.mean()) for k, v in chosen.items()})
            # The share of all positions whose reference costs the reference stage's logit
            # less than log 2 (S·U ≥ ½): where the reference has a real say in the mixture.
            strength = chosen["similarity"] * chosen["confidence"]
            positions = logits.shape[1] * logits.shape[3] * logits.shape[4]
            stats["ref_used"] = float((strength >= REF_USED).sum()) / positions
        return stats

    # -- real coding -------------------------------------------------------------------
    @staticmethod
    def pad(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % STRIDE, (-w) % STRIDE
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if (ph or pw) else x

    def integer_model(self):
        """The integer entropy model that real coding uses: the one stored in the model
        file when it was loaded from one, else exported from the current weights."""
        from .integer_model import IntegerEntropyModel

        stored = getattr(self, "_integer_model", None)
        return stored if stored is not None else IntegerEntropyModel.export(self)

    def attach_integer_model(self, integer_model) -> None:
        self._integer_model = integer_model

    def train(self, mode: bool = True):
        if mode:  # weights are about to change: the stored integer model goes stale
            self._integer_model = None
        return super().train(mode)

    def _transform(self, net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        """The inner convolutions in bf16 when asked; GSDN and the last convolution in fp32.
        GSDN's division by a root of a sum of squares in bf16 cost up to 0.6 dB on a photo
        at q3, and y in bf16 (8 significant bits) moves the rounding of ŷ."""
        if self.transform_precision != "bf16":
            return net(x)
        last = len(net) - 1
        for i, layer in enumerate(net):
            if i < last and isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                with torch.autocast(x.device.type, dtype=torch.bfloat16):
                    x = layer(x).float()
            else:
                x = layer(x)
        return x

    @torch.no_grad()
    def compress(self, x: torch.Tensor):
        """(1, 3, H, W) in [0, 1] (or uint8), on any device → ([z bytes, ŷ bytes], ŷ int
        tensor). The photo is moved to the model's device a tile at a time."""
        from .latent_coder import MAX_SYMBOL, encode_latents

        dev = device_of(self)
        y = tiled(
            lambda t: self._transform(self.g_a, _nhwc(unit_float(t.to(dev)))).contiguous(),
            self.pad(x),
            Y_STRIDE,
            1,
            tile=self.tile,
        )
        z = self.h_a(y)
        z_bytes = self.entropy_bottleneck.compress(z)[0]
        z_hat = self.entropy_bottleneck.decompress([z_bytes], z.shape[-2:])
        y_sym = y.round_().clamp_(-MAX_SYMBOL, MAX_SYMBOL)  # in place: ŷ is held once
        y_bytes = encode_latents(self.integer_model(), y_sym, z_hat)
        return [z_bytes, y_bytes], y_sym

    @torch.no_grad()
    def decompress(self, strings, height: int, width: int):
        """Streams → ((1, 3, H, W) reconstruction in [0, 1], ŷ)."""
        from .latent_coder import decode_latents
        from .rans import padded_stream

        zh, zw = -(-height // STRIDE), -(-width // STRIDE)
        z_hat = self.entropy_bottleneck.decompress(
            [padded_stream(strings[0], self.config.N * zh * zw)], (zh, zw)
        )
        y_sym = decode_latents(self.integer_model(), strings[1], z_hat)
        x_hat = tiled(
            lambda t: self._transform(self.g_s, _nhwc(t)).clamp_(0, 1).contiguous(),
            y_sym,
            1,
            Y_STRIDE,
            tile=self.tile,
            size=(height, width),
        ).contiguous()
        return x_hat, y_sym
