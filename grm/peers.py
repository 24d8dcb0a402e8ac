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
from .threads import torch_threads  # noqa: E402

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
            indexes = net.gaussian_conditional.build_indexes(_hyper_synthesis(net, z_hat))
            y_bytes = net.gaussian_conditional.compress(y, indexes)[0]
            return [z_bytes, y_bytes], net.gaussian_conditional.quantize(y, "symbols").float()
        z = net.h_a(y)
        z_bytes = net.entropy_bottleneck.compress(z)[0]
        z_hat = net.entropy_bottleneck.decompress([z_bytes], z.shape[-2:])
        params = _hyper_synthesis(net, z_hat)
        y_bytes, y_hat = _context_encode(net, y, params)
        return [z_bytes, y_bytes], y_hat

    @torch.no_grad()
    def decompress(self, strings, height: int, width: int):
        net = self.net
        zh, zw = -(-height // STRIDE), -(-width // STRIDE)
        n_y = self.widths["M"] * zh * zw * 16
        z_hat = net.entropy_bottleneck.decompress(
            [padded_stream(strings[0], self.widths["N"] * zh * zw)], (zh, zw)
        )
        if self.arch == "bmshj2018-hyperprior":
            indexes = net.gaussian_conditional.build_indexes(_hyper_synthesis(net, z_hat))
            y_hat = net.gaussian_conditional.decompress(
                [padded_stream(strings[1], n_y)], indexes, z_hat.dtype
            )
        else:
            y_hat = _context_decode(
                net, padded_stream(strings[1], n_y), _hyper_synthesis(net, z_hat)
            )
        return net.g_s(y_hat)[..., :height, :width].clamp(0, 1), y_hat


def build_peer(arch: str, config) -> Peer:
    return Peer(arch, config)


def _hyper_synthesis(net, z_hat: torch.Tensor) -> torch.Tensor:
    """h_s on one thread: the encoder and the decoder, whatever their thread counts, must
    get the same entropy parameters from the same ẑ."""
    with torch_threads(1):
        return net.h_s(z_hat)


# Minnen 2018's context model, coded by wavefronts instead of compressai's loop over every
# latent position (`_compress_ar`): its 5×5 masked convolution reads the two rows above,
# columns −2 … +2, and the two positions to the left, so every position with the same
# 3·row + column depends only on earlier wavefronts and all of them are computed at once
# (a 768×512 photo: 141 steps instead of 1,536). The same network, symbols and
# compressai's rANS coder and tables; the stream holds the symbols wavefront by wavefront.
KERNEL, PAD = 5, 2


def _wavefronts(hy: int, wy: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    rows, cols = torch.meshgrid(torch.arange(hy), torch.arange(wy), indexing="ij")
    t = (3 * rows + cols).flatten()
    order = torch.argsort(t, stable=True)
    counts = torch.bincount(t).tolist()
    return [(rows.flatten()[o], cols.flatten()[o]) for o in torch.split(order, counts) if len(o)]


def _masked_weight(net) -> torch.Tensor:
    return net.context_prediction.weight * net.context_prediction.mask


def _gaussians(net, weight, y_pad: torch.Tensor, params: torch.Tensor, rows, cols):
    """Scales and means of the positions (rows, cols), n × M each, from the padded latents
    (``weight``: the context convolution's, masked)."""
    k = torch.arange(KERNEL)
    patches = y_pad[0][:, rows[:, None, None] + k[None, :, None], cols[:, None, None] + k]
    ctx = torch.einsum("mnij,omij->no", patches, weight) + net.context_prediction.bias
    p = params[0][:, rows, cols].T
    out = net.entropy_parameters(torch.cat((p, ctx), 1)[..., None, None])[..., 0, 0]
    scales, means = out.chunk(2, 1)
    return scales, means


def _tables(net) -> tuple[list, list, list]:
    gc = net.gaussian_conditional
    return gc.quantized_cdf.tolist(), gc.cdf_length.tolist(), gc.offset.tolist()


def _context_encode(net, y: torch.Tensor, params: torch.Tensor) -> tuple[bytes, torch.Tensor]:
    from compressai.ans import BufferedRansEncoder

    gc = net.gaussian_conditional
    y_pad = F.pad(y, (PAD,) * 4)  # each position's value becomes ŷ once it is coded
    symbols, indexes, weight = [], [], _masked_weight(net)
    with torch_threads(1):  # the decoder must get the same means whatever its thread count
        for rows, cols in _wavefronts(*y.shape[-2:]):
            scales, means = _gaussians(net, weight, y_pad, params, rows, cols)
            q = gc.quantize(y_pad[0][:, rows + PAD, cols + PAD].T, "symbols", means)
            y_pad[0][:, rows + PAD, cols + PAD] = (q + means).T
            symbols += q.flatten().tolist()
            indexes += gc.build_indexes(scales).flatten().tolist()
    encoder = BufferedRansEncoder()
    encoder.encode_with_indexes(symbols, indexes, *_tables(net))
    return encoder.flush(), y_pad[..., PAD:-PAD, PAD:-PAD]


def _context_decode(net, stream: bytes, params: torch.Tensor) -> torch.Tensor:
    from compressai.ans import RansDecoder

    gc, tables, weight = net.gaussian_conditional, _tables(net), _masked_weight(net)
    hy, wy = params.shape[-2:]
    y_pad = torch.zeros(1, net.M, hy + 2 * PAD, wy + 2 * PAD, device=params.device)
    decoder = RansDecoder()
    decoder.set_stream(stream)
    with torch_threads(1):  # as the encoder computed them
        for rows, cols in _wavefronts(hy, wy):
            scales, means = _gaussians(net, weight, y_pad, params, rows, cols)
            idx = gc.build_indexes(scales).flatten().tolist()
            q = torch.tensor(
                decoder.decode_stream(idx, *tables), dtype=means.dtype, device=means.device
            )
            y_pad[0][:, rows + PAD, cols + PAD] = gc.dequantize(q.reshape(means.shape), means).T
    return y_pad[..., PAD:-PAD, PAD:-PAD]
