"""RD curves, per-rate-point tables and BD-rates from the evaluation results."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

MIN_OVERLAP = 0.5


@dataclass
class Curve:
    name: str
    label: str
    kind: str  # grm | seed (the subject, another seed) | peer | ablation | classic
    points: list = field(default_factory=list)  # dicts with bpp, psnr, ms_ssim, …

    def sorted(self) -> list:
        return sorted(self.points, key=lambda p: p["bpp"])

    def _finite(self, metric: str) -> list:
        return [p for p in self.sorted() if p.get(metric) is not None and math.isfinite(p[metric])]

    def arrays(self, metric: str):
        pts = self._finite(metric)
        return np.array([p["bpp"] for p in pts]), np.array([p[metric] for p in pts])

    def operational(self, metric: str) -> tuple[np.ndarray, np.ndarray, list]:
        """The operational RD curve: by rate, only points that beat the quality of every
        cheaper point. A point with more bits and no more quality is one nobody would
        choose (and BD-rate needs quality to rise with rate); the dropped rate points
        are returned so the report can name them."""
        keep, dropped, best = [], [], -math.inf
        for p in self._finite(metric):
            (keep if p[metric] > best else dropped).append(p)
            best = max(best, p[metric])
        return (
            np.array([p["bpp"] for p in keep]),
            np.array([p[metric] for p in keep]),
            [p.get("rate_point", f"{p['bpp']:.3f} bpp") for p in dropped],
        )


def quality_db(metric: str, values: np.ndarray) -> np.ndarray:
    """MS-SSIM is compared in dB (−10·log10(1 − MS-SSIM)), as is customary."""
    if metric == "ms_ssim":
        return -10 * np.log10(np.clip(1 - values, 1e-10, None))
    return values


def bd_rate(anchor: Curve, test: Curve, metric: str = "psnr") -> tuple[float | None, str]:
    """BD-rate (%) of test against anchor, or None with the reason it is not defined."""
    import bjontegaard as bd

    ra, da, _ = anchor.operational(metric)
    rt, dt, _ = test.operational(metric)
    if len(ra) < 2 or len(rt) < 2:
        return None, "fewer than 2 points on an operational RD curve"
    da, dt = quality_db(metric, da), quality_db(metric, dt)
    lo, hi = max(da.min(), dt.min()), min(da.max(), dt.max())
    span = min(da.max() - da.min(), dt.max() - dt.min())
    overlap = (hi - lo) / span if span > 0 else 0.0
    if overlap < MIN_OVERLAP:
        return None, f"quality ranges overlap {max(0.0, overlap):.0%} (< {MIN_OVERLAP:.0%})"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(
            bd.bd_rate(ra, da, rt, dt, method="pchip", require_matching_points=False, min_overlap=0)
        )
    return value, ""


def plot_curves(curves: list[Curve], metric: str, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
    # Learned models: solid lines with markers; classic codecs: thin dotted lines.
    styles = {
        "grm": ("o-", 2.2),
        "ablation": ("s-", 1.4),
        "peer": ("^-", 1.6),
        "classic": (".:", 0.9),
    }
    shown = []
    for c in curves:
        x, y = c.arrays(metric)
        if len(x) == 0:
            continue
        y = quality_db(metric, y) if metric == "ms_ssim" else y
        marker, lw = styles.get(c.kind, ("o-", 1.0))
        ax.plot(x, y, marker, lw=lw, ms=3 if c.kind == "classic" else 5, label=c.label)
        shown.append((c.kind != "classic", x, y))
    learned = [(x, y) for is_learned, x, y in shown if is_learned]
    if learned:
        # The axes frame the learned models' range, not the classic codecs' top qualities.
        x_hi = 1.5 * max(float(np.max(x)) for x, _ in learned)
        in_view = [y[x <= x_hi] for _, x, y in shown]
        y_lo = min(float(np.min(y)) for _, y in learned) - 1.0
        y_hi = max(float(np.max(v)) for v in in_view if len(v)) + 0.5
        ax.set_xlim(0, x_hi)
        ax.set_ylim(y_lo, y_hi)
    ax.set_xlabel("bits per pixel (actual bitstream)")
    ax.set_ylabel("MS-SSIM (dB)" if metric == "ms_ssim" else "PSNR (dB)")
    ax.set_title(
        f"Rate–distortion, {'MS-SSIM' if metric == 'ms_ssim' else 'PSNR'} "
        "(mean over evaluation set)"
    )
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _fmt(v, digits=3):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def deltas(subject: Curve, other: Curve) -> list[dict]:
    """Per shared rate point (params.yaml order): subject − other in bpp (%), PSNR, MS-SSIM."""
    own = {p["rate_point"]: p for p in subject.points}
    out = []
    for p in other.points:
        mine = own.get(p["rate_point"])
        if mine is None or not p["bpp"]:
            continue
        out.append(
            {
                "rate_point": p["rate_point"],
                "bpp": 100 * (mine["bpp"] / p["bpp"] - 1),
                "psnr": mine["psnr"] - p["psnr"],
                "ms_ssim": mine["ms_ssim"] - p["ms_ssim"],
            }
        )
    return out


def seed_spread(subject: Curve, twins: list[Curve]) -> dict:
    """Per rate point, how far two trainings of one model lie apart by chance alone: the
    standard deviations of Δ bpp % and Δ PSNR between two trainings, measured between the
    subject and each of its seed twins ("dof": how many)."""
    from .intervals import rms

    found: dict = {}
    for twin in twins:
        for d in deltas(subject, twin):
            found.setdefault(d["rate_point"], []).append(d)
    return {
        rate: {
            "bpp": rms([d["bpp"] for d in ds]),
            "psnr": rms([d["psnr"] for d in ds]),
            "dof": len(ds),
        }
        for rate, ds in found.items()
    }


def within_noise(d: dict, spread: dict, interval: dict | None = None) -> bool | None:
    """True when the difference could be chance. With a 95% interval (over the photos and
    the seeds): when both Δ bpp's and Δ PSNR's contain 0. Without photos to draw, the same
    test on the seed noise alone. None: neither is known."""
    from .intervals import excludes_zero, with_training_noise

    if not (interval and interval.get("bpp") and interval.get("psnr")):
        s = spread.get(d["rate_point"])
        if s is None:
            return None
        interval = {
            k: with_training_noise(d[k], (d[k], d[k]), s[k], s["dof"]) for k in ("bpp", "psnr")
        }
    return not (excludes_zero(interval["bpp"]) or excludes_zero(interval["psnr"]))


def equal_lambda_table(
    subject: Curve, others: list[Curve], spread: dict | None = None, intervals: dict | None = None
) -> list[str]:
    """Per rate point, how the subject differs from each model trained at the same λ.

    Defined even where a BD-rate is not (short runs give curves that are not monotonic),
    so a reader always sees what an ablation or a peer changed; with a seed spread, a
    difference smaller than chance is marked so. ``intervals``: other's name → rate point →
    95% intervals of Δ bpp % and Δ PSNR (``intervals.delta_intervals``).
    """
    from .intervals import fmt_interval

    spread, intervals = spread or {}, intervals or {}
    lines = [
        "| vs | rate point | Δ bpp | 95% CI | Δ PSNR dB | 95% CI | Δ MS-SSIM | noise |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for other in others:
        for d in deltas(subject, other):
            ci = intervals.get(other.name, {}).get(d["rate_point"], {})
            noise = {True: "within noise", False: "beyond noise", None: "–"}[
                within_noise(d, spread, ci)
            ]
            lines.append(
                f"| {other.label} | {d['rate_point']} | {d['bpp']:+.1f}% | "
                f"{fmt_interval(ci.get('bpp'), 1, '%')} | {d['psnr']:+.2f} | "
                f"{fmt_interval(ci.get('psnr'), 2)} | {d['ms_ssim']:+.4f} | {noise} |"
            )
    return lines


def verdicts(
    subject: Curve, others: list[Curve], spread: dict, intervals: dict | None = None
) -> list[str]:
    """One line per other model: mean Δ over the shared rate points, and whether it is noise."""
    lines, intervals = [], intervals or {}
    for other in others:
        ds = deltas(subject, other)
        if not ds:
            continue
        bpp, dpsnr = float(np.mean([d["bpp"] for d in ds])), float(np.mean([d["psnr"] for d in ds]))
        cis = intervals.get(other.name, {})
        noise = [within_noise(d, spread, cis.get(d["rate_point"])) for d in ds]
        what = (
            f"{'fewer' if bpp < 0 else 'more'} bits ({bpp:+.1f}%) at {dpsnr:+.2f} dB PSNR, "
            f"mean over {len(ds)} rate point(s)"
        )
        if None in noise:
            tail = "noise not measured"
        elif all(noise):
            tail = "**within noise** at every rate point: no difference shown"
        else:
            tail = f"beyond noise at {noise.count(False)} of {len(ds)} rate point(s)"
        lines.append(f"- vs {other.label}: {subject.label} spends {what}; {tail}.")
    return lines


def seed_twin(spec: dict, subject: dict) -> bool:
    """The subject's own settings with only another seed: its distance measures chance."""
    rest = {k: v for k, v in spec.items() if k != "seed"}
    return (
        "seed" in spec
        and rest == {k: v for k, v in subject.items() if k != "seed"}
        and spec["seed"] != subject.get("seed")
    )


def curve_kind(variant: str, spec: dict, subject: str, subject_spec: dict) -> str:
    """How the report treats a variant: the subject (grm), its seed twin, a peer (another
    architecture) or an ablation (grm with switches)."""
    if variant == subject:
        return "grm"
    if seed_twin(spec, subject_spec):
        return "seed"
    return "peer" if spec.get("arch", "grm") != "grm" else "ablation"


def training_budget(params: dict) -> str:
    """The report's one line on what every learned model was trained with: the base, then each
    rate point's fine-tune (a rate point's own ``steps`` wins over ``train.steps``)."""
    train, base = params.get("train") or {}, params.get("base") or {}
    steps = {
        name: (rp or {}).get("steps", train.get("steps"))
        for name, rp in (params.get("rates") or {}).items()
    }
    ladder = ", ".join(f"{name} {n:,}" for name, n in steps.items())

    def crops(section: dict) -> str:  # the base may train on other crops than its fine-tunes
        return f"batch {section.get('batch_size')} × {section.get('crop')}² crops"

    return (
        f"Training budget, the same for every learned model (model `{train.get('model')}`): "
        f"a base of {base.get('steps', 0):,} steps of {crops({**train, **base})} at "
        f"λ = {base.get('lmbda')}, then a fine-tune per rate point on {crops(train)} "
        f"({ladder} steps)."
    )


INTRO = (
    "bpp is the size of the real file; est. bpp is the float model's own estimate, so the "
    "difference is what the container and the coder cost (for grm, including the portable "
    "integer entropy model). Every learned model's file was decoded and its latents compared "
    "with the encoder's (the container's checksum): a mismatch stops the evaluation, so no row "
    "below comes from a file that did not decode exactly."
)


def point_metrics(curves: list[Curve]) -> dict:
    """bpp, PSNR and MS-SSIM of every learned rate point, as ``NAME.RATE.KEY``."""
    return {
        f"{c.name}.{p['rate_point']}.{k}": p.get(k)
        for c in curves
        if c.kind != "classic"
        for p in c.sorted()
        for k in ("bpp", "psnr", "ms_ssim")
    }


def bd_rate_pairs(curves: list[Curve], anchor: str, subject: str) -> list[tuple[str, str]]:
    """(test, reference): every codec against the anchor, then the subject against each learned
    model (a seed twin included: that BD-rate is what chance alone moves)."""
    names = {c.name for c in curves}
    pairs = [(c.name, anchor) for c in curves if c.name != anchor] if anchor in names else []
    if subject in names:
        pairs += [
            (subject, c.name)
            for c in curves
            if c.kind in ("peer", "ablation", "seed") and c.name != subject
        ]
    return pairs


def widen_by_seed(found: dict, subject: str, twins: list[str], spreads: dict) -> dict:
    """(test, ref, part) → (BD-rate, interval), part a metric or a kind: the subject's
    comparisons with the other learned models, one training each, get the training noise of
    two trainings in their interval, σ·√2 (``spreads``: part → ``seeds.Spread``, σ pooled
    over every model's seeds)."""
    import math

    from .intervals import with_training_noise

    out = dict(found)
    for (test, ref, part), (v, interval) in found.items():
        spread = spreads.get(part)
        if test != subject or ref in twins or spread is None:
            continue
        sd = spread.sigma * math.sqrt(2)
        out[(test, ref, part)] = (v, with_training_noise(v, interval, sd, spread.dof))
    return out


def off_curve_points(curves: list[Curve]) -> list[str]:
    """Points each BD-rate leaves out as dominated, one line per codec and metric."""
    out = []
    for c in curves:
        for metric in ("psnr", "ms_ssim"):
            dropped = c.operational(metric)[2]
            if dropped:
                out.append(f"{c.label} ({metric.replace('_', '-').upper()}): {', '.join(dropped)}")
    return out


KIND_ORDER = ("clean", "textured", "repeated")  # data/eval_photos' kinds; others follow


def photos_by_kind(photos: list[str], kinds: dict[str, str]) -> dict[str, list[str]]:
    """kind → its photos (in the given order), the kinds in KIND_ORDER, then by name; a photo
    without a kind is of kind "all"."""
    found: dict[str, list[str]] = {}
    for photo in photos:
        found.setdefault(kinds.get(photo, "all"), []).append(photo)
    order = [k for k in KIND_ORDER if k in found] + sorted(set(found) - set(KIND_ORDER))
    return {k: found[k] for k in order}


def kind_section(
    curves: list[Curve],
    kinds: dict[str, str],
    anchor: str,
    subject: str,
    overall: dict,
    spreads: dict,
) -> tuple[list[str], dict, dict]:
    """BD-rate (PSNR) of the subject and its peers per kind of photo, each with its interval
    over that kind's photos alone (with the seed noise of that kind): where a
    difference holds and where it does not. ``overall``: (test, ref) → (BD-rate, interval)
    on all the photos, already computed. Also returns (test, ref, kind) → (BD-rate,
    interval), kind "all" for all the photos."""
    from .intervals import bd_rate_intervals, restricted, shared_photos

    groups = photos_by_kind(shared_photos(curves), kinds)
    by_name = {c.name: c for c in curves}
    pairs = [
        (test, ref)
        for test, ref in bd_rate_pairs(curves, anchor, subject)
        if subject in (test, ref) or by_name[test].kind == "peer"
    ]
    results = {(test, ref, "all"): overall[(test, ref)] for test, ref in pairs}
    if len(groups) < 2 or not pairs:
        return [], {}, results
    used = {name for pair in pairs for name in pair}
    found: dict = {}
    for kind, photos in groups.items():
        mine = {n: restricted(by_name[n], photos) for n in used}
        ci = bd_rate_intervals(pairs, mine, metrics=("psnr",)) if len(photos) >= 2 else {}
        for test, ref in pairs:
            found[(test, ref, kind)] = (
                bd_rate(mine[ref], mine[test], "psnr")[0],
                ci.get((test, ref, "psnr")),
            )
    twins = [c.name for c in curves if c.kind == "seed"]
    results = {**widen_by_seed(found, subject, twins, spreads), **results}  # "all": done
    groups["all"] = sorted(p for photos in groups.values() for p in photos)
    metrics: dict = {}
    for (test, ref, kind), (v, interval) in results.items():
        metrics.update(bd_metrics(f"bd_rate_kind.psnr.{kind}.{test}_vs_{ref}", v, interval))
    head = " | ".join(f"{k} ({len(p)})" for k, p in groups.items())
    lines = [
        "## By kind of photo",
        "",
        "BD-rate (PSNR) on each kind's photos alone, with its 95% interval (bootstrap over "
        "that kind's photos, paired); a kind with few photos gives a wide interval. Kinds: "
        "clean (sky, water, smooth gradients), textured (fur, foliage, crowds, noise), "
        "repeated (the same structure many times in one photo: what a global reference is for).",
        "",
        f"| codec | vs | {head} |",
        "|---|---|" + "---|" * len(groups),
    ]
    for test, ref in pairs:
        row = " | ".join(_bd_cell(*results[(test, ref, k)]) for k in groups)
        lines.append(f"| {by_name[test].label} | {by_name[ref].label} | {row} |")
    return lines + [""], metrics, results


def bd_metrics(key: str, v: float | None, interval) -> dict:
    """A BD-rate and the ends of its interval as flat metrics: KEY, KEY.lo, KEY.hi."""
    return {key: v, **{f"{key}.{end}": x for end, x in zip(("lo", "hi"), interval or ())}}


def _bd_cell(v: float | None, interval) -> str:
    from .intervals import fmt_interval

    return "n/a" if v is None else f"{v:+.1f}% {fmt_interval(interval)}"


def reading(v: float | None, interval) -> str:
    """A BD-rate, its interval and what the interval says."""
    from .intervals import excludes_zero

    if v is None:
        return "n/a"
    side = excludes_zero(interval)
    word = (
        "noise not measured"
        if side is None
        else f"**beyond noise, {'fewer' if v < 0 else 'more'} bits**"
        if side
        else "within noise"
    )
    return f"{_bd_cell(v, interval)}, {word}"


def verdict_section(
    curves: list[Curve], subject: str, results: dict, means: list[str] = (), spread=None
) -> list[str]:
    """The answer the run exists for, first: the subject's BD-rate (PSNR) against every
    other learned model, overall and per kind, each read off its interval. ``means``: the
    comparison of seed means (``seeds.seed_mean_section``), the one to cite, which then
    leads, the single trainings following under their own heading. ``spread``: the
    ``seeds.Spread`` of one training (overall PSNR) in their intervals."""
    from .intervals import t_quantile

    by_name = {c.name: c for c in curves}
    twins = [c.name for c in curves if c.kind == "seed"]
    others = [c for c in curves if c.kind in ("peer", "ablation")]
    kinds = list(dict.fromkeys(k for (t, _, k) in results if t == subject and k != "all"))
    if subject not in by_name or not any((subject, c.name, "all") in results for c in others):
        return []

    me = by_name[subject]
    lines = [
        "## Verdict",
        "",
        *([*means, "### One training each", ""] if means else []),
        f"BD-rate (PSNR) of {me.label} against each other learned model, negative: fewer bits "
        "at equal PSNR. The 95% interval is over the photos (paired bootstrap)"
        + (
            ", joined in quadrature with the training noise of two single trainings, σ·√2 at "
            "Student's t, σ pooled over the seeds of every model in the run"
            + (
                f" ({spread.sigma:.1f}% overall, {spread.dof} degree(s) of freedom, "
                f"t = {t_quantile(spread.dof):.2f})"
                if spread is not None
                else ""
            )
            + "; the subject's seed twins lie at ("
            + "; ".join(
                f"{by_name[t].label}: "
                + ", ".join(
                    f"{'overall' if k == 'all' else k} {results[(subject, t, k)][0]:+.1f}%"
                    for k in ["all", *kinds]
                    if results.get((subject, t, k), (None,))[0] is not None
                )
                for t in twins
            )
            + ")"
            if twins
            else "; seed noise is not in this run (add a seed twin of the subject)"
        )
        + ".",
        "",
    ]
    for other in others:
        if (subject, other.name, "all") not in results:
            continue
        parts = [f"{reading(*results[(subject, other.name, 'all')])} overall"] + [
            f"{k}: {reading(*results[(subject, other.name, k)])}"
            for k in kinds
            if (subject, other.name, k) in results
        ]
        lines.append(f"- vs {other.label}: " + "; ".join(parts) + ".")
    return lines + [""]


def reference_section(
    curves: list[Curve], kinds: dict[str, str], subject: str
) -> tuple[list[str], dict]:
    """Per photo, how the subject used its global reference (the share of positions whose
    reference had S·U ≥ ½, and the reference stage's mixture weight, averaged over the rate
    points) beside its bits and PSNR against every other learned model at equal λ: where
    the reference helps, and where it does not."""
    me = next((c for c in curves if c.name == subject), None)
    rows = [r for p in (me.points if me else []) for r in p.get("photos", {}).values()]
    if not rows or not all("ref_used" in r for r in rows):
        return [], {}
    others = [c for c in curves if c.kind in ("peer", "ablation", "seed")]
    shared = set.intersection(*(set(p.get("photos", {})) for c in [me, *others] for p in c.points))
    groups = photos_by_kind(sorted(shared), kinds)
    if not groups:
        return [], {}

    def mean_of(curve: Curve, photo: str, key: str) -> float:
        return float(np.mean([p["photos"][photo][key] for p in curve.points]))

    def versus(other: Curve, photo: str) -> tuple[float, float]:
        theirs = {p["rate_point"]: p["photos"][photo] for p in other.points}
        pairs = [
            (p["photos"][photo], theirs[p["rate_point"]])
            for p in me.points
            if p["rate_point"] in theirs
        ]
        return (
            float(np.mean([100 * (a["bpp"] / b["bpp"] - 1) for a, b in pairs])),
            float(np.mean([a["psnr"] - b["psnr"] for a, b in pairs])),
        )

    head = "".join(f" Δ bpp vs {c.label} | Δ dB |" for c in others)
    lines = [
        f"## How {me.label} uses its global reference",
        "",
        "Per photo, averaged over the rate points: the share of latent positions whose chosen "
        "reference has similarity × confidence ≥ ½ (its mixture logit is lowered by less than "
        "log 2), the reference stage's mean mixture weight, and the subject's bits and PSNR "
        "against each other model at the same λ (negative Δ bpp: the subject spends fewer).",
        "",
        f"| kind | photo | reference used | stage-2 weight |{head}",
        "|---|---|---|---|" + "---|---|" * len(others),
    ]
    means = {}
    for kind, photos in groups.items():
        used = [mean_of(me, photo, "ref_used") for photo in photos]
        means[kind] = float(np.mean(used))
        for photo, share in zip(photos, used):
            cells = "".join(
                f" {d_bpp:+.1f}% | {d_psnr:+.2f} |"
                for d_bpp, d_psnr in (versus(c, photo) for c in others)
            )
            lines.append(
                f"| {kind} | {photo} | {100 * share:.1f}% | "
                f"{mean_of(me, photo, 'weight_stage2'):.3f} |{cells}"
            )
    metrics = {f"reference_used.{k}": v for k, v in means.items()}
    summary = ", ".join(f"{k} {100 * v:.1f}%" for k, v in means.items())
    return lines + ["", f"Reference used, mean by kind: {summary}.", ""], metrics


def markdown(
    curves: list[Curve],
    anchor: str,
    subject: str,
    images: int,
    budget: str = "",
    kinds: dict[str, str] | None = None,
    groups: list[list[str]] | None = None,
    goal: float | None = None,
    seeds: dict | None = None,
) -> tuple[str, dict]:
    """The report text and a flat dict of headline metrics. ``groups``: the variants that
    are one model with different seeds (``seeds.seed_groups``), compared as seed means;
    ``goal``: the half-width (%) their overall intervals should reach (``report.goal``);
    ``seeds``: variant → its training seed (models with the same seeds are paired)."""
    by_name = {c.name: c for c in curves}
    metrics = point_metrics(curves)
    pairs = bd_rate_pairs(curves, anchor, subject)
    bd = {
        (test, ref, metric): bd_rate(by_name[ref], by_name[test], metric)
        for test, ref in pairs
        for metric in ("psnr", "ms_ssim")
    }
    metrics.update(
        {f"bd_rate.{metric}.{test}_vs_{ref}": v for (test, ref, metric), (v, _) in bd.items()}
    )
    from .intervals import bd_rate_intervals, delta_intervals, shared_photos

    photos = len(shared_photos(curves))
    twin_names = [c.name for c in curves if c.kind == "seed"]
    from .seeds import seed_mean_section, training_spreads

    spreads = training_spreads(curves, groups or [[subject, *twin_names]], kinds or {})
    widened = widen_by_seed(
        {key: (bd[key][0], bd_ci) for key, bd_ci in bd_rate_intervals(pairs, by_name).items()},
        subject,
        twin_names,
        spreads,
    )
    ci = {key: interval for key, (_, interval) in widened.items()}
    for (test, ref, metric), interval in ci.items():
        for end, v in zip(("lo", "hi"), interval or ()):
            metrics[f"bd_rate_ci.{metric}.{test}_vs_{ref}.{end}"] = v
    learned = [c for c in curves if c.kind in ("peer", "ablation")]
    twins = [c for c in curves if c.kind == "seed"]
    compared = subject in by_name and bool(learned or twins)
    spread = seed_spread(by_name[subject], twins) if compared else {}
    deltas_ci = (
        {c.name: delta_intervals(by_name[subject], c, spread) for c in learned} if compared else {}
    )
    for rp, sp in spread.items():
        metrics[f"seed_spread.{rp}.bpp_pct"], metrics[f"seed_spread.{rp}.psnr"] = (
            sp["bpp"],
            sp["psnr"],
        )

    lines = [
        "# grm rate–distortion report",
        "",
        f"Evaluation set: {images} images; every number below comes from real files "
        f"that were written and decoded.",
        "",
        *([budget, ""] if budget else []),
        "![PSNR](rd_psnr.png)",
        "",
        "![MS-SSIM](rd_msssim.png)",
        "",
        INTRO,
        "",
    ]
    for c in curves:
        if c.kind != "classic":
            lines += _points_table(c)
    lines += _bd_rate_section(by_name, pairs, bd, anchor, ci, photos, bool(twin_names))
    overall = {(t, r): (v, ci.get((t, r, m))) for (t, r, m), (v, _) in bd.items() if m == "psnr"}
    by_kind, kind_metrics, results = kind_section(
        curves, kinds or {}, anchor, subject, overall, spreads
    )

    means, mean_metrics = seed_mean_section(
        curves, groups or [], subject, kinds or {}, spreads, goal, seeds
    )
    verdict = verdict_section(curves, subject, results, means, spreads.get("psnr"))
    metrics.update(mean_metrics)
    at = lines.index("![PSNR](rd_psnr.png)")
    lines[at:at] = verdict
    lines += by_kind
    metrics.update(kind_metrics)
    usage, usage_metrics = reference_section(curves, kinds or {}, subject)
    lines += usage
    metrics.update(usage_metrics)
    off_curve = off_curve_points(curves)
    if off_curve:
        lines += (
            [
                "Left out of the BD-rates as off the operational curve (more bits, no more quality "
                "than a cheaper point of the same codec):",
                "",
            ]
            + [f"- {n}" for n in off_curve]
            + [""]
        )
    if compared:
        lines += _equal_lambda_section(by_name[subject], learned, twins, spread, deltas_ci)
    return "\n".join(lines), metrics


def _points_table(c: Curve) -> list[str]:
    lines = [
        f"## {c.label}",
        "",
        "| rate point | bpp | est. bpp | PSNR dB | MS-SSIM | enc s | dec s |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in c.sorted():
        lines.append(
            f"| {p['rate_point']} | {_fmt(p['bpp'], 4)} | {_fmt(p.get('bpp_estimated'), 4)} | "
            f"{_fmt(p['psnr'], 2)} | {_fmt(p.get('ms_ssim'), 4)} | {_fmt(p.get('encode_s'), 2)} | "
            f"{_fmt(p.get('decode_s'), 2)} |"
        )
    return lines + [""]


def _bd_rate_section(
    by_name: dict, pairs: list, bd: dict, anchor: str, ci: dict, photos: int, seeds: bool
) -> list[str]:
    from .intervals import LEVEL, RESAMPLES, fmt_interval

    rows, notes = [], []
    for test, ref in pairs:
        cells = []
        for metric in ("psnr", "ms_ssim"):
            v, why = bd[(test, ref, metric)]
            if v is None:
                notes.append(
                    f"{by_name[test].label} vs {by_name[ref].label} ({metric}): not computed, {why}"
                )
            interval = f" {fmt_interval(ci[(test, ref, metric)])}" if ci else ""
            cells.append(f"{v:+.1f}%{interval}" if v is not None else "n/a")
        rows.append(f"| {by_name[test].label} | {by_name[ref].label} | {cells[0]} | {cells[1]} |")
    lines = [
        "## BD-rate",
        "",
        "Negative means fewer bits than the reference at equal quality (Bjøntegaard, PCHIP, "
        "`bjontegaard` package; MS-SSIM in dB)."
        + (
            f" In brackets, the {LEVEL:.0f}% interval: bootstrap over the {photos} evaluation "
            f"photos ({RESAMPLES:,} draws, the same photos for both codecs); a comparison whose "
            "interval holds 0 is within noise."
            + (" With so few photos the intervals are rough." if photos < 12 else "")
            + (
                " The subject's intervals against the other learned models also hold the "
                "training noise of two single trainings (σ·√2, σ pooled over the seeds of "
                "every model in the run), joined in quadrature at Student's t."
                if seeds
                else ""
            )
            if ci
            else ""
        ),
        "",
        "| codec | vs | BD-rate PSNR | BD-rate MS-SSIM |",
        "|---|---|---|---|",
        *rows,
        "",
    ]
    if not pairs:
        lines += [f"(no anchor '{anchor}' in this run)", ""]
    if notes:
        lines += ["Not computed:", ""] + [f"- {n}" for n in notes] + [""]
    return lines


def _equal_lambda_section(
    me: Curve, learned: list, twins: list, spread: dict, intervals: dict
) -> list[str]:
    if spread:
        noise = (
            "Seed noise: the same model and data with another seed ("
            + ", ".join(c.label for c in twins)
            + ") differ by (RMS) "
            + "; ".join(
                f"{rp}: {sp['bpp']:.1f}% bpp, {sp['psnr']:.2f} dB" for rp, sp in spread.items()
            )
            + ". The 95% intervals over the photos hold it too, joined in quadrature at "
            "Student's t (one degree of freedom per seed twin: few twins, wide intervals)."
        )
    else:
        noise = (
            "Seed noise not measured: the intervals below are over the photos only. Add a "
            "variant that differs from the subject only in its seed (e.g. "
            f"`{me.name}-seed1: {{arch: grm, seed: 1}}`) and they hold what training "
            "changes by chance."
        )
    return [
        f"## {me.label} at equal λ",
        "",
        "The same rate point (same λ, data and steps) against each other learned model: "
        "positive Δ bpp means more bits for the subject. A difference is *within noise* when "
        "the 95% intervals of both Δ bpp and Δ PSNR hold 0.",
        "",
        noise,
        "",
        *verdicts(me, learned, spread, intervals),
        "",
        *equal_lambda_table(me, learned, spread, intervals),
        "",
    ]
