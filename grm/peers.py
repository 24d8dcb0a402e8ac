"""compressai's learned peers behind grm's model interface, trained by the same pipeline.

``bmshj2018-hyperprior`` (Ballé 2018 scale hyperprior) and ``mbt2018`` (Minnen 2018
joint autoregressive + hyperprior). The wrapper adds what the pipeline needs: any
input size (pad to 64, crop back), and the decoded latents alongside the streams so
the container can checksum them exactly as it does for grm.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from .entropy_bottleneck import whole_compressai

whole_compressai()  # the peers are compressai's own models: all of the package

from compressai.models import JointAutoregressiveHierarchicalPriors, ScaleHyperprior  # noqa: E402
from compressai.models.base import CompressionModel  # noqa: E402

from .rans import padded_stream  # noqa: E402
from .image_io import unit_float  # noqa: E402
from .model import GRM, config_from, device_of  # noqa: E402
from .settings import from_known_keys  # noqa: E402
from .strides import STRIDE  # noqa: E402

PEERS = {"bmshj2018-hyperprior": ScaleHyperprior, "mbt2018": JointAutoregressiveHierarchicalPriors}


@dataclass(frozen=True)
class PeerConfig:
    """A peer's model: only the widths, so that it matches grm's. grm's switches (norm,
    reference, ...) would be silently meaningless to compressai's models: refused."""

    N: int
    M: int

    @classmethod
    def of(cls, spec) -> "PeerConfig":
        """A named config ('compact', ...) or a dict of N / M, optionally on a ``base``."""
        spec = {"base": spec} if isinstance(spec, str) else dict(spec)
        base = spec.pop("base", None)
        widths = {k: getattr(config_from(base), k) for k in ("N", "M")} if base else {}
        return from_known_keys(
            cls, {**widths, **spec}, "keys for a peer's model (it takes N and M only)"
        )


class Peer(CompressionModel):
    def __init__(self, arch: str, config):
        super().__init__()
        if arch not in PEERS:
            raise ValueError(f"unknown peer {arch!r}; choose from {sorted(PEERS)}")
        cfg = PeerConfig.of(config)
        self.arch, self.widths = arch, dataclasses.asdict(cfg)
        self.net = PEERS[arch](N=cfg.N, M=cfg.M)

    @property
    def ARCH(self) -> str:
        return self.arch

    def export_config(self) -> dict:
        return dict(self.widths)

    def forward(self, x: torch.Tensor) -> dict:
        h, w = x.shape[-2:]
        out = self.net(GRM.pad(x))
        return {"x_hat": out["x_hat"][..., :h, :w], "likelihoods": out["likelihoods"]}

    @torch.no_grad()
    def compress(self, x: torch.Tensor):
        net = self.net
        y = net.g_a(GRM.pad(unit_float(x.to(device_of(self)))))
        if self.arch == "bmshj2018-hyperprior":
            z = net.h_a(torch.abs(y))
            z_bytes = net.entropy_bottleneck.compress(z)[0]
            z_hat = net.entropy_bottleneck.decompress([z_bytes], z.shape[-2:])
            indexes = net.gaussian_conditional.build_indexes(net.h_s(z_hat))
            y_bytes = net.gaussian_conditional.compress(y, indexes)[0]
            return [z_bytes, y_bytes], net.gaussian_conditional.quantize(y, "symbols").float()
        z = net.h_a(y)
        z_bytes = net.entropy_bottleneck.compress(z)[0]
        z_hat = net.entropy_bottleneck.decompress([z_bytes], z.shape[-2:])
        params = net.h_s(z_hat)
        hy, wy = z_hat.shape[2] * 4, z_hat.shape[3] * 4
        y_hat = F.pad(y, (2, 2, 2, 2))
        y_bytes = net._compress_ar(y_hat, params, hy, wy, 5, 2)  # fills y_hat as it codes
        return [z_bytes, y_bytes], y_hat[..., 2:-2, 2:-2]

    @torch.no_grad()
    def decompress(self, strings, height: int, width: int):
        net = self.net
        zh, zw = -(-height // STRIDE), -(-width // STRIDE)
        n_y = self.widths["M"] * zh * zw * 16
        z_hat = net.entropy_bottleneck.decompress(
            [padded_stream(strings[0], self.widths["N"] * zh * zw)], (zh, zw)
        )
        if self.arch == "bmshj2018-hyperprior":
            indexes = net.gaussian_conditional.build_indexes(net.h_s(z_hat))
            y_hat = net.gaussian_conditional.decompress(
                [padded_stream(strings[1], n_y)], indexes, z_hat.dtype
            )
        else:
            params = net.h_s(z_hat)
            hy, wy = zh * 4, zw * 4
            buf = torch.zeros(1, net.M, hy + 4, wy + 4, device=z_hat.device)
            net._decompress_ar(padded_stream(strings[1], n_y), buf, params, hy, wy, 5, 2)
            y_hat = buf[..., 2:-2, 2:-2]
        return net.g_s(y_hat)[..., :height, :width].clamp(0, 1), y_hat


def build_peer(arch: str, config) -> Peer:
    return Peer(arch, config)
