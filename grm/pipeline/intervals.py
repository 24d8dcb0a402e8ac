"""95% confidence intervals for the report's comparisons, by bootstrap over the photos.

A comparison of two codecs on a few photos is a sample: another set of photos would give
another number. Resampling the evaluation photos with replacement, the same draw for both
codecs (paired: a hard photo is hard for both), and recomputing the comparison each time
gives the spread a reader needs to call a difference real. With a seed variant in the run,
chance in training adds to chance in the photos: the two half-widths add in quadrature,
the training's at Student's t for the few seeds it is measured from
(``with_training_noise``).
"""

from __future__ import annotations

import math

import numpy as np

from .report import Curve, bd_rate

RESAMPLES = 1000
LEVEL = 95.0
METRICS = ("bpp", "psnr", "ms_ssim")


def shared_photos(curves: list[Curve]) -> list[str]:
    """The photos every point of every curve was measured on (the pairing)."""
    sets = [set(p.get("photos", {})) for c in curves for p in c.points]
    return sorted(set.intersection(*sets)) if sets else []


def _matrix(curve: Curve, photos: list[str]) -> dict[str, np.ndarray]:
    """metric → (points × photos) array, in curve.points order."""
    return {
        m: np.array(
            [[p["photos"][k].get(m, math.nan) for k in photos] for p in curve.points], dtype=float
        )
        for m in METRICS
    }


def _weights(n_photos: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples × photos): each row the share of a bootstrap draw that is each photo."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_photos, size=(resamples, n_photos))
    return np.stack([np.bincount(d, minlength=n_photos) for d in draws]) / n_photos


def _resampled(curve: Curve, matrix: dict, w: np.ndarray) -> Curve:
    means = {m: matrix[m] @ w for m in METRICS}
    points = [
        {
            **{k: v for k, v in p.items() if k != "photos"},
            **{m: float(means[m][i]) for m in METRICS},
        }
        for i, p in enumerate(curve.points)
    ]
    return Curve(curve.name, curve.label, curve.kind, points)


def _interval(values: list[float | None]) -> tuple[float, float] | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if len(finite) < 0.9 * len(values) or not finite:
        return None  # undefined on too many draws: no honest interval
    lo, hi = np.percentile(finite, [(100 - LEVEL) / 2, 100 - (100 - LEVEL) / 2])
    return float(lo), float(hi)


def restricted(curve: Curve, photos: list[str]) -> Curve:
    """The curve as measured on ``photos`` alone: each point the mean over them."""
    points = []
    for p in curve.points:
        rows = [p["photos"][k] for k in photos]
        means = {m: float(np.mean([r.get(m, math.nan) for r in rows])) for m in METRICS}
        points.append({**p, **means, "photos": {k: p["photos"][k] for k in photos}})
    return Curve(curve.name, curve.label, curve.kind, points)


def bd_rate_intervals(
    pairs: list[tuple[str, str]],
    by_name: dict,
    resamples: int = RESAMPLES,
    seed: int = 0,
    metrics: tuple[str, ...] = ("psnr", "ms_ssim"),
) -> dict:
    """(test, ref, metric) → (lo, hi) of the BD-rate in %, or None where it is not defined."""
    photos = shared_photos(list(by_name.values()))
    out: dict = {}
    if len(photos) < 2:
        return out
    w = _weights(len(photos), resamples, seed)
    used = {name for pair in pairs for name in pair}
    draws = {  # each codec's curve on every draw, built once for all the pairs it is in
        n: [_resampled(by_name[n], matrix, row) for row in w]
        for n, matrix in ((n, _matrix(by_name[n], photos)) for n in used)
    }
    for test, ref in pairs:
        for metric in metrics:
            values = [bd_rate(r, t, metric)[0] for r, t in zip(draws[ref], draws[test])]
            out[(test, ref, metric)] = _interval(values)
    return out


def delta_intervals(
    subject: Curve, other: Curve, spread: dict, resamples: int = RESAMPLES, seed: int = 0
) -> dict:
    """rate point → {"bpp": (lo, hi) of Δ bpp %, "psnr": (lo, hi) of Δ PSNR dB}, subject −
    other at the same λ, with the training noise of that rate point when one is known
    (``spread``: rate point → {"bpp", "psnr": standard deviations, "dof"})."""
    photos = shared_photos([subject, other])
    if len(photos) < 2:
        return {}
    w = _weights(len(photos), resamples, seed)
    mine, theirs = _matrix(subject, photos), _matrix(other, photos)
    row_of = {p["rate_point"]: i for i, p in enumerate(subject.points)}
    out = {}
    for j, p in enumerate(other.points):
        i = row_of.get(p["rate_point"])
        if i is None:
            continue
        bpp = 100 * (w @ mine["bpp"][i] / (w @ theirs["bpp"][j]) - 1)
        psnr = w @ mine["psnr"][i] - w @ theirs["psnr"][j]
        at = {
            "bpp": 100 * (mine["bpp"][i].mean() / theirs["bpp"][j].mean() - 1),
            "psnr": mine["psnr"][i].mean() - theirs["psnr"][j].mean(),
        }
        s = spread.get(p["rate_point"], {"bpp": None, "psnr": None, "dof": 0})
        out[p["rate_point"]] = {
            key: with_training_noise(at[key], _interval(list(values)), s[key], s["dof"])
            for key, values in (("bpp", bpp), ("psnr", psnr))
        }
    return out


def with_training_noise(
    estimate: float | None, interval: tuple[float, float] | None, sd: float | None, dof: int
) -> tuple[float, float] | None:
    """The 95% interval of a comparison that carries two independent errors: the photos
    drawn (``interval``, the bootstrap over them) and the trainings drawn (standard
    deviation ``sd``, estimated from ``dof`` degrees of freedom: Student's t quantile, as
    wide as so few seeds warrant). Their half-widths add in quadrature on each side."""
    if interval is None or estimate is None or sd is None or dof < 1:
        return interval
    h = t_quantile(dof) * sd
    lo, hi = interval
    return (
        estimate - math.hypot(max(estimate - lo, 0.0), h),
        estimate + math.hypot(max(hi - estimate, 0.0), h),
    )


def t_quantile(dof: int) -> float:
    """Student's t at the interval's level: 12.7 for one degree of freedom, 1.96 for many."""
    from scipy.stats import t

    return float(t.ppf(0.5 + LEVEL / 200, dof))


def rms(values: list[float]) -> float:
    """The standard deviation of the difference between two trainings, from the measured
    differences between trainings of one model (their mean is 0 by construction)."""
    return math.sqrt(float(np.mean(np.square(values))))


def excludes_zero(interval: tuple[float, float] | None) -> bool | None:
    if interval is None:
        return None
    return interval[0] > 0 or interval[1] < 0


def fmt_interval(interval: tuple[float, float] | None, digits: int = 1, unit: str = "") -> str:
    if interval is None:
        return "–"
    lo, hi = interval
    return f"[{lo:+.{digits}f}, {hi:+.{digits}f}]{unit}"
