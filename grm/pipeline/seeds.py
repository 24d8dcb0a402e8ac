"""Several trainings of one model: the mean of their curves, and the noise left in a
comparison of means.

Two trainings of one model differ by chance (the seed), often by more than the change a
comparison looks for. With several seeds of a model, the report compares seed means: per
photo and rate point, bpp and quality averaged over the seeds. What chance leaves in a
BD-rate of two means is estimated from the seeds themselves: a model's k seeds give the
variance s² = ½·mean(d²) over their pairs (d: two seeds' BD-rate on the same photos;
E[d²] = 2σ²) with k − 1 degrees of freedom, pooled over the models with 2+ seeds, and a mean
of k seeds carries σ²/k. A comparison of means of k_a and k_b seeds thus has the training
noise σ·√(1/k_a + 1/k_b), which joins the interval over the photos at Student's t for the
pooled degrees of freedom (``intervals.with_training_noise``).
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np

from .report import Curve, bd_rate


def seed_groups(specs: dict[str, dict]) -> list[list[str]]:
    """Variants that are one model with different seeds, grouped (params.yaml order); a
    variant without another seed is a group of its own."""
    groups: dict[str, list[str]] = {}
    for name, spec in specs.items():
        rest = {k: v for k, v in (spec or {}).items() if k != "seed"}
        groups.setdefault(repr(sorted(rest.items())), []).append(name)
    return list(groups.values())


def mean_curve(curves: list[Curve], name: str, label: str, kind: str) -> Curve:
    """Per rate point all the curves share, each photo's metrics averaged over the curves,
    and the point's metrics the mean over its photos (as a single model's are)."""
    from .intervals import METRICS

    by_rate = [{p["rate_point"]: p for p in c.points} for c in curves]
    points = []
    for rate in by_rate[0]:
        if not all(rate in b for b in by_rate):
            continue
        mine = [b[rate] for b in by_rate]
        photos = sorted(set.intersection(*(set(p["photos"]) for p in mine)))
        rows = {
            photo: {
                m: float(np.mean([p["photos"][photo].get(m, math.nan) for p in mine]))
                for m in METRICS
            }
            for photo in photos
        }
        means = {m: float(np.mean([r[m] for r in rows.values()])) for m in METRICS}
        points.append({"rate_point": rate, **means, "photos": rows})
    return Curve(name, label, kind, points)


class Spread(NamedTuple):
    sigma: float  # σ of one training's BD-rate, %
    dof: int  # degrees of freedom it is estimated from


def seed_sigma(groups: list[list[Curve]], metric: str = "psnr") -> Spread | None:
    """σ of one training's BD-rate (%): each model's variance over its seeds, pooled with
    weights k − 1; None where no model has two seeds (or no pair's BD-rate is defined)."""
    weighted, dof = 0.0, 0
    for group in groups:
        squares = [
            d * d
            for a, b in itertools.combinations(group, 2)
            if (d := bd_rate(a, b, metric)[0]) is not None
        ]
        if squares:
            k = min(len(group) - 1, len(squares))
            weighted, dof = weighted + k * float(np.mean(squares)) / 2, dof + k
    return Spread(math.sqrt(weighted / dof), dof) if dof else None


def training_spreads(
    curves: list[Curve], groups: list[list[str]], kinds: dict[str, str]
) -> dict[str, Spread | None]:
    """σ of one training, pooled over every model of the run with 2+ seeds, per part: "psnr"
    and "ms_ssim" over all the photos, and each kind of photo (PSNR) over its own."""
    from .intervals import restricted, shared_photos
    from .report import photos_by_kind

    by_name = {c.name: c for c in curves}
    learned = [[by_name[n] for n in g if n in by_name] for g in groups]
    learned = [g for g in learned if len(g) > 1 and g[0].kind != "classic"]
    if not learned:
        return {}
    out = {m: seed_sigma(learned, m) for m in ("psnr", "ms_ssim")}
    photos = shared_photos([c for g in learned for c in g])
    for kind, chosen in photos_by_kind(photos, kinds).items():
        out.setdefault(kind, seed_sigma([[restricted(c, chosen) for c in g] for g in learned]))
    return out


def matched_seeds(mine: list[Curve], other: list[Curve], seeds: dict) -> list | None:
    """(subject's training, other's training) per seed, where both models were trained with
    the same seeds, at least three: trainings of one seed start from the same numbers and
    see the photos in the same order, so the comparison is paired. None: not paired."""
    a = {seeds.get(c.name): c for c in mine}
    b = {seeds.get(c.name): c for c in other}
    if None in a or len(a) != len(mine) or len(b) != len(other) or set(a) != set(b):
        return None
    return [(a[k], b[k]) for k in sorted(a)] if len(a) >= 3 else None


def _compare_means(
    learned: list[list[Curve]], mine: list[Curve], parts: dict, sigmas: dict, seeds: dict
) -> tuple:
    """(other's name, part) → (BD-rate of the subject's mean against the other's, its
    interval with the training noise); (other's name, part) → the half-width of the
    photos' interval alone; (other's name, part) → the Spread of one seed's BD-rate, where
    the comparison is paired by seed. ``sigmas``: part → the Spread of one training."""
    from .intervals import bd_rate_intervals, restricted, with_training_noise

    found, photos_half, paired = {}, {}, {}
    matched = {g[0].name: matched_seeds(mine, g, seeds) for g in learned if g is not mine}
    for part, chosen in parts.items():
        groups_here = [[restricted(c, chosen) for c in g] for g in learned]
        here = {c.name: c for g in groups_here for c in g}
        means = [mean_curve(g, g[0].name, g[0].label, g[0].kind) for g in groups_here]
        me = next(m for g, m in zip(learned, means) if g is mine)
        for g, other in zip(learned, means):
            if g is mine:
                continue
            pair = {me.name: me, other.name: other}
            ci = bd_rate_intervals([(me.name, other.name)], pair, metrics=("psnr",))
            interval, v = ci.get((me.name, other.name, "psnr")), bd_rate(other, me, "psnr")[0]
            if interval is not None and v is not None:
                photos_half[(other.name, part)] = max(v - interval[0], interval[1] - v, 0.0)
            per_seed = [
                bd_rate(here[b.name], here[a.name], "psnr")[0] for a, b in matched[other.name] or []
            ]
            spread = sigmas[part]
            if per_seed and None not in per_seed:
                one = Spread(float(np.std(per_seed, ddof=1)), len(per_seed) - 1)
                paired[(other.name, part)] = one
                sd, dof = one.sigma / math.sqrt(len(per_seed)), one.dof
            elif spread is not None:
                sd = spread.sigma * math.sqrt(1 / len(mine) + 1 / len(g))
                dof = spread.dof
            else:
                sd, dof = None, 0
            found[(other.name, part)] = (v, with_training_noise(v, interval, sd, dof))
    return found, photos_half, paired


def seeds_for(
    goal: float,
    photos_half: float,
    spread: Spread,
    models: int,
    most: int = 50,
    paired: bool = False,
):
    """Seeds of each model that would bring a comparison of two means within ±``goal`` %:
    the photos' half-width and σ as measured, the degrees of freedom ``models`` models of
    that many seeds would give; ``paired``: ``spread`` is that of one seed's BD-rate in a
    comparison paired by seed (k − 1 degrees of freedom). None: not within ``most`` seeds."""
    from .intervals import t_quantile

    for k in range(2, most + 1):
        if paired:
            training = t_quantile(k - 1) * spread.sigma / math.sqrt(k)
        else:
            training = t_quantile(models * (k - 1)) * spread.sigma * math.sqrt(2 / k)
        if math.hypot(photos_half, training) <= goal:
            return k
    return None


def seed_mean_section(
    curves: list[Curve],
    groups: list[list[str]],
    subject: str,
    kinds: dict[str, str],
    spreads: dict,
    goal: float | None = None,
    seeds: dict | None = None,
) -> tuple[list[str], dict]:
    """The verdict between seed means, overall and per kind: the subject's seeds averaged
    against each other learned model's. Empty unless some model has two seeds. ``spreads``:
    σ of one training per part (``training_spreads``); ``goal``: the overall half-width (%)
    the run should reach; the section then says how many seeds of each model would;
    ``seeds``: variant → its seed, which pairs models trained with the same seeds."""
    from .intervals import shared_photos, t_quantile
    from .report import bd_metrics, photos_by_kind, reading

    by_name = {c.name: c for c in curves}
    learned = [
        [by_name[n] for n in g if n in by_name and by_name[n].kind != "classic"] for g in groups
    ]
    learned = [g for g in learned if g]
    mine = next((g for g in learned if any(c.name == subject for c in g)), None)
    others = [g for g in learned if g is not mine]
    if mine is None or not others or all(len(g) < 2 for g in learned):
        return [], {}
    photos = shared_photos([c for g in learned for c in g])
    parts = {"all": photos}
    by_kind = photos_by_kind(photos, kinds)
    if len(by_kind) > 1:
        parts.update(by_kind)
    sigmas = {part: spreads.get("psnr" if part == "all" else part) for part in parts}
    found, photos_half, paired = _compare_means(learned, mine, parts, sigmas, seeds or {})
    metrics = {f"seed_sigma.psnr.{p}": s.sigma for p, s in sigmas.items() if s is not None}
    metrics.update({f"seed_dof.psnr.{p}": s.dof for p, s in sigmas.items() if s is not None})
    for (other, part), (v, interval) in found.items():
        key = f"bd_rate_seed_mean.psnr.{part}.{subject}_vs_{other}"
        metrics.update(bd_metrics(key, v, interval))

    def who(g: list[Curve]) -> str:
        return f"{g[0].label} ({len(g)} seed{'s' if len(g) > 1 else ''})"

    spread = sigmas["all"]
    lines = [
        "### Averaged over seeds",
        "",
        "Each model's curve averaged over its seeds (per photo and rate point), BD-rate (PSNR) "
        "of the subject's mean against each other model's. The 95% interval joins two "
        "independent errors in quadrature: the photos drawn (paired bootstrap) and the "
        "trainings drawn, σ·√(1/k₁ + 1/k₂) for means of k₁ and k₂ seeds at Student's t, σ the "
        "BD-rate spread of one training"
        + (
            f" ({spread.sigma:.1f}% overall, pooled over the models' seeds: "
            f"{spread.dof} degree(s) of freedom, so t = {t_quantile(spread.dof):.2f})"
            if spread is not None
            else " (not measured: no pair of seeds gave a BD-rate)"
        )
        + ". Two models trained with the same seeds (three or more) are compared **paired by "
        "seed**: the trainings of one seed start from the same numbers and see the photos in "
        "the same order, so the training noise is the spread s of the per-seed BD-rates, s/√n "
        "for n seeds at t with n − 1 degrees of freedom.",
        "",
    ]
    for g in learned:
        if g is mine:
            continue
        cells = [f"{reading(*found[(g[0].name, 'all')])} overall"] + [
            f"{part}: {reading(*found[(g[0].name, part)])}" for part in parts if part != "all"
        ]
        one = paired.get((g[0].name, "all"))
        how = f" (paired by seed, s = {one.sigma:.1f}%)" if one else ""
        lines.append(f"- {who(mine)} vs {who(g)}{how}: " + "; ".join(cells) + ".")
        if one:
            metrics[f"seed_paired_sd.psnr.all.{subject}_vs_{g[0].name}"] = one.sigma
    if goal and spread is not None:
        lines += [
            "",
            _goal_line(goal, learned, mine, found, photos_half, spread, paired, metrics),
        ]
    return lines + [""], metrics


def _goal_line(goal, learned, mine, found, photos_half, spread, paired, metrics) -> str:
    """How far the overall intervals are from ±goal, and the seeds that would close it."""
    cells = []
    for g in learned:
        key = (g[0].name, "all")
        if g is mine or found[key][1] is None or key not in photos_half:
            continue
        v, (lo, hi) = found[key]
        half = max(v - lo, hi - v)
        one = paired.get(key)
        k = seeds_for(goal, photos_half[key], one or spread, len(learned), paired=bool(one))
        metrics[f"seeds_for_goal.psnr.all.{mine[0].name}_vs_{g[0].name}"] = k
        need = f"about {k} seeds of each model" if k else "more than 50 seeds of each model"
        met = "met" if half <= goal else need + f" for ±{goal:g}%"
        cells.append(f"vs {g[0].label} ±{half:.1f}%, {met}")
    return (
        f"Goal ±{goal:g}% overall (`report.goal`): " + "; ".join(cells) + " (at the measured σ and "
        "photos' spread)."
    )
