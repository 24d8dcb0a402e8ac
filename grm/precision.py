"""The float format the transforms run in: bf16 where the hardware computes it natively.

Only the transforms (g_a, g_s) and training use it. The entropy model that decides the
bitstream is exact integer arithmetic (``grm.integer_model``), so a file written with bf16
transforms decodes on an fp32 machine and back; the format moves reconstruction pixels
by rounding noise only. On a CPU without native bf16 (AVX2 only) autocast emulates it,
about 10× slower than fp32, so ``auto`` means fp32 there.
"""

from __future__ import annotations

import torch

PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return any(
            getattr(torch.cpu, probe, lambda: False)()
            for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
        )
    return False


def resolve(precision: str, device: torch.device) -> str:
    """``auto`` → bf16 where ``device`` computes it natively, else fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"
