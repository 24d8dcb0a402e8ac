"""Lookup tables and integer coding tables: the mixture without exp, erf or log.

The tables are built once at export (where libm may round differently from machine to
machine) and stored in the model file, so every decoder reads the same integers. At
coding time only integer operations, table lookups and single correctly rounded IEEE
multiplies are used, so the frequency tables come out identical everywhere.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .integer_ops import FRAC
from .mixture import LOG_SCALE_MAX, MAX_HALF_WIDTH, SCALE_MIN, TAIL_SIGMAS, CodingTables
from .reference import SIM_MIN

CDF_BITS = 30  # Φ in units of 2^-30
T_BITS = 16  # standardised arguments in units of 2^-16
T_STEP_BITS = 8  # Φ tabulated every 2^-8, linearly interpolated in between
T_MAX = 8  # |t| ≥ 8: Φ is 0 or 1 at 2^-30
LS_STEP_BITS = 8  # log σ rounded to multiples of 2^-8
LS_MIN = -8  # below this σ = SCALE_MIN + exp(log σ) is SCALE_MIN to 3e-3
WEIGHT_BITS = 16  # mixture weights: exp(−Δlogit) in units of 2^-16
EXP_SPAN = 16  # Δlogit ≥ 16: weight 0
MANT_BITS = 12  # log of a float's mantissa, 4096 entries
EXP_RANGE = 64  # log of 2^e for e in [-64, 64)

TABLE_NAMES = ("phi", "inv_sigma", "sigma", "exp", "log_mant", "log_exp")


def _log_sigma_grid() -> np.ndarray:
    step = 2.0**-LS_STEP_BITS
    return np.arange(LS_MIN / step, LOG_SCALE_MAX / step + 1) * step


def _lengths() -> dict[str, int]:
    sigmas = len(_log_sigma_grid())
    return {
        "phi": 2 * T_MAX * 2**T_STEP_BITS + 1,
        "inv_sigma": sigmas,
        "sigma": sigmas,
        "exp": EXP_SPAN * 2**FRAC + 1,
        "log_mant": 2**MANT_BITS,
        "log_exp": 2 * EXP_RANGE,
    }


def build_tables() -> dict[str, torch.Tensor]:
    """The lookup tables (built with libm once, at export)."""
    t = np.arange(-T_MAX * 2**T_STEP_BITS, T_MAX * 2**T_STEP_BITS + 1) / 2**T_STEP_BITS
    phi = np.array([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in t])
    sigma = SCALE_MIN + np.exp(_log_sigma_grid())
    d = np.arange(EXP_SPAN * 2**FRAC + 1) / 2**FRAC
    mant = 0.5 + (np.arange(2**MANT_BITS) + 0.5) / 2 ** (MANT_BITS + 1)
    e = np.arange(-EXP_RANGE, EXP_RANGE)
    tables = {
        "phi": np.round(phi * 2**CDF_BITS),
        "inv_sigma": 2.0**T_BITS / (sigma * 2**FRAC),  # (d in 2^-FRAC) → t in 2^-T_BITS
        "sigma": np.round(sigma * 2**FRAC),
        "exp": np.round(np.exp(-d) * 2**WEIGHT_BITS),
        "log_mant": np.round(np.log(mant) * 2**FRAC),
        "log_exp": np.round(e * math.log(2.0) * 2**FRAC),
    }
    tables["exp"][-1] = 0
    out = {k: torch.from_numpy(v.astype(np.int64)) for k, v in tables.items() if k != "inv_sigma"}
    out["inv_sigma"] = torch.from_numpy(tables["inv_sigma"])
    return out


def lookup(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """table[index] for a 1-D table: index_select is 2-3x faster than advanced indexing
    or take on the coder's small groups."""
    return table.index_select(0, index.reshape(-1)).view(index.shape)


class Tables:
    """The stored lookup tables, with the integer functions built on them."""

    def __init__(self, t: dict[str, torch.Tensor]):
        missing = [k for k in TABLE_NAMES if k not in t]
        if missing:
            raise ValueError(f"entropy tables missing: {missing}")
        # The grids are constants of this code: tables built for other grids would be
        # indexed wrongly (consistently on both sides, so silently), hence refused.
        wrong = [k for k, n in _lengths().items() if t[k].shape != (n,)]
        if wrong:
            raise ValueError(f"entropy tables {wrong} do not match this grm's lookup grids")
        self.phi, self.sigma, self.exp = t["phi"].long(), t["sigma"].long(), t["exp"].long()
        self.inv_sigma = t["inv_sigma"].double()
        self.log_mant, self.log_exp = t["log_mant"].long(), t["log_exp"].long()
        self._phi_fine = self._interpolated(self.phi)
        # constants of the coding functions, made once on the tables' device
        one, device = 1 << FRAC, self.phi.device
        self._edge_steps = (
            torch.arange(2 * MAX_HALF_WIDTH + 2, dtype=torch.float64, device=device) * one
        )
        self._half_bin = torch.tensor(
            [one // 2, -(one // 2)], dtype=torch.float64, device=device
        ).view(2, 1, 1)

    @staticmethod
    def _interpolated(phi: torch.Tensor) -> torch.Tensor:
        """Φ at every t in units of 2^-T_BITS (2^20 int32, 4 MB), linearly interpolated in
        integers from the stored table: ``cdf`` is then one lookup, and gives the same
        integers as interpolating per call (every intermediate here is below 2^31)."""
        shift = T_BITS - T_STEP_BITS
        per_entry = 1 << shift
        phi = phi.int()
        step = torch.cat([phi[1:] - phi[:-1], phi[:1] * 0])
        f = torch.arange(per_entry, dtype=torch.int32, device=phi.device)
        return (phi.unsqueeze(1) + ((step.unsqueeze(1) * f) >> shift))[:-1].flatten()

    def tensors(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self, k) for k in TABLE_NAMES}

    def to(self, device) -> "Tables":
        return Tables({k: v.to(device) for k, v in self.tensors().items()})

    # -- integer functions ------------------------------------------------------------
    def scale_index(self, log_scale: torch.Tensor) -> torch.Tensor:
        """log σ (units 2^-FRAC) → index into the σ grid (nearest multiple of 2^-8)."""
        shift = FRAC - LS_STEP_BITS
        i = (log_scale.long() + (1 << (shift - 1))) >> shift
        return (i - LS_MIN * 2**LS_STEP_BITS).clamp_(0, self.sigma.numel() - 1)

    def cdf(self, d: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Φ(d / σ_s) in units of 2^-CDF_BITS (int32), for integer d in units of 2^-FRAC:
        t = d/σ rounded to units of 2^-T_BITS, looked up in the interpolated table."""
        limit = T_MAX << T_BITS
        t = (
            (d.double() * lookup(self.inv_sigma, s))
            .round_()
            .clamp_(-limit, limit - 1)
            .int()
            .add_(limit)
        )
        return lookup(self._phi_fine, t)

    def bin_prob(self, v: torch.Tensor, mean: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """P(round(X) = v), X ~ N(mean, σ_s), in units of 2^-CDF_BITS (stable side)."""
        d = (v.double() * 2**FRAC - mean).abs_()  # exact: integers below 2^53
        upper, lower = self.cdf(torch.sub(self._half_bin, d), s)  # ±½ − d
        return upper - lower

    def log(self, v: torch.Tensor) -> torch.Tensor:
        """ln v for v in [SIM_MIN, 1] (float64), in units of 2^-FRAC."""
        m, e = torch.frexp(v.clamp(SIM_MIN, 1.0))
        i = (m * 2 ** (MANT_BITS + 1)).long() - 2**MANT_BITS
        return lookup(self.log_mant, i.clamp_(0, 2**MANT_BITS - 1)) + lookup(
            self.log_exp, e.long() + EXP_RANGE
        )

    def coding_tables(
        self, logits: torch.Tensor, means: torch.Tensor, s: torch.Tensor, only_last: bool
    ) -> CodingTables:
        """Per-symbol frequency tables for C symbols from (K, C) integer parameters.

        A window around the mixture mean wide enough for every component's
        mean ± TAIL_SIGMAS·σ (at most 2·MAX_HALF_WIDTH+1 symbols), then an escape bin.
        """
        diff = (logits.amax(0) - logits).clamp_(max=self.exp.numel() - 1)
        w = lookup(self.exp, diff)  # K, C
        if only_last:
            w[:-1] = 0
        total = w.sum(0)
        one = 1 << FRAC
        centre = torch.div(
            (w * means).sum(0) + total * (one // 2), total * one, rounding_mode="floor"
        )
        reach = ((means - centre * one).abs_() + int(TAIL_SIGMAS) * lookup(self.sigma, s)).amax(
            0
        )  # C, 2^-FRAC
        half = int(min(MAX_HALF_WIDTH, max(1, -(-int(reach.max()) // one))))
        # bin edges relative to each component's mean: the first edge, then steps of one
        first = (centre * one - (half * one + one // 2) - means).double()  # K, C
        cum = self.cdf(
            first.unsqueeze(-1) + self._edge_steps[: 2 * half + 2], s.unsqueeze(-1)
        )  # K, C, L+1
        # the mixture's CDF at every edge (Σ_k w_k Φ_k: integers below 2^48, exact in
        # float64), then the total mass as one more edge: consecutive differences are the
        # bin masses and, last, the escape bin's mass
        at_edges = (w.double().unsqueeze(-1) * cum).sum(0)  # C, L+1
        at_edges = torch.cat(
            [at_edges, at_edges[:, :1] + (total << CDF_BITS).double().unsqueeze(1)], 1
        )
        probs = (at_edges[:, 1:] - at_edges[:, :-1]).cpu()
        return CodingTables(
            probs.numpy(),
            (centre - half).cpu().numpy().astype(np.int32),
            centre.double().cpu().numpy(),
            (reach.double() / one).clamp(min=1.0).cpu().numpy(),
        )
