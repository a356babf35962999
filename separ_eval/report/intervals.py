"""95% intervals for SA, MDD and F@R5: a bootstrap over evaluation documents, resampled jointly over steps.

The unit of resampling is the document: every evaluation window belongs to one, and a
run keeps, per step and side, the token counts of each document (`samples` in the
results file). One bootstrap replicate draws the documents of each side with
replacement (forget and retain independently: they are different corpora) and keeps
that draw for every step, so a replicate is a whole resampled curve, not points
resampled apart. The interval is the percentile interval of the replicates' SA (MDD,
F@R5); the per-step standard error of a metric is the replicates' standard deviation.
Seeded: the same counts give the same intervals, so `validate` can recompute them.
"""

from __future__ import annotations

import numpy as np

from .separability import (
    ACCURACY_METRICS,
    RETAIN_DROP_THRESHOLD,
    forget_drop_at_retain_drop,
)

ITERATIONS = 1000
SEED = 0
LEVEL = 0.95
COUNT_FIELDS = ("n", "top1", "top10", "skip_n", "skip_top1", "skip_top10", "loss_sum")
# metric -> (numerator field, denominator field) of the per-document counts
RATIOS = {
    "top1": ("top1", "n"),
    "top10": ("top10", "n"),
    "skip50_top1": ("skip_top1", "skip_n"),
    "skip50_top10": ("skip_top10", "skip_n"),
}


def metric_values(counts: np.ndarray, metric: str, weights: np.ndarray | None = None) -> np.ndarray:
    """A metric per step from (steps, documents, fields) counts; with (replicates, documents) weights,
    (replicates, steps). Micro-averaged: every target token weighs the same."""
    numerator, denominator = (counts[..., COUNT_FIELDS.index(f)] for f in RATIOS[metric])
    if weights is None:
        return numerator.sum(axis=-1) / denominator.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights @ numerator.T) / (weights @ denominator.T)


def _drops(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - values / values[:, :1]


def _areas(d_retain: np.ndarray, d_forget: np.ndarray) -> np.ndarray:
    """SA of each row (see separability.separability_area), vectorized over replicates."""
    n = d_retain.shape[0]
    x = np.concatenate([np.zeros((n, 1)), d_retain, np.ones((n, 1))], axis=1)
    y = np.concatenate([np.zeros((n, 1)), d_forget, np.ones((n, 1))], axis=1)
    twice = (x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(axis=1)
    return -twice


def replicates(forget: np.ndarray, retain: np.ndarray, *, iterations: int = ITERATIONS, seed: int = SEED):
    """Multinomial document weights (replicates, documents) for each side, drawn once per run."""
    rng = np.random.default_rng(seed)
    draw = lambda d: rng.multinomial(d, np.full(d, 1.0 / d), size=iterations).astype(np.float64)  # noqa: E731
    return draw(forget.shape[1]), draw(retain.shape[1])


def _percentile_interval(values: np.ndarray, level: float) -> list[float] | None:
    """None when no replicate is defined (e.g. a metric whose step-0 value is 0)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return [float(low), float(high)]


def intervals(forget: np.ndarray, retain: np.ndarray, *, metrics=ACCURACY_METRICS, iterations: int = ITERATIONS,
              seed: int = SEED, level: float = LEVEL) -> tuple[dict, list[dict]]:
    """({metric: {"sa_ci", "mdd_ci", "f_at_r5_ci"}}, per step {"forget": {metric: se}, "retain": {...}}) from
    per-document counts of shape (steps, documents, fields) for each side."""
    forget, retain = np.asarray(forget, dtype=np.float64), np.asarray(retain, dtype=np.float64)
    weights_forget, weights_retain = replicates(forget, retain, iterations=iterations, seed=seed)
    summary, stderr = {}, [{"forget": {}, "retain": {}} for _ in range(forget.shape[0])]
    with np.errstate(invalid="ignore", divide="ignore"):  # a replicate without any scored target gives NaN
        for metric in metrics:
            summary[metric] = _metric_intervals(forget, retain, weights_forget, weights_retain, metric, level, stderr)
    return summary, stderr


def _spread(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.std(finite, ddof=1)) if finite.size > 1 else None


def _metric_intervals(forget, retain, weights_forget, weights_retain, metric: str, level: float, stderr) -> dict:
    """The intervals of one metric; its per-step standard errors go into `stderr`."""
    f_values = metric_values(forget, metric, weights_forget)
    r_values = metric_values(retain, metric, weights_retain)
    d_forget, d_retain = _drops(f_values), _drops(r_values)
    mdd = np.maximum(0.0, (d_forget - d_retain).max(axis=1))
    at_r5 = np.array([forget_drop_at_retain_drop(r.tolist(), f.tolist(), RETAIN_DROP_THRESHOLD)
                      if np.isfinite(r).all() else np.nan for r, f in zip(d_retain, d_forget)])
    for step in range(forget.shape[0]):
        stderr[step]["forget"][metric] = _spread(f_values[:, step])
        stderr[step]["retain"][metric] = _spread(r_values[:, step])
    return {
        "sa_ci": _percentile_interval(_areas(d_retain, d_forget), level),
        "mdd_ci": _percentile_interval(mdd, level),
        "f_at_r5_ci": _percentile_interval(at_r5, level),
    }


def half_width(interval) -> float:
    return (interval[1] - interval[0]) / 2


def resampled_areas(forget: np.ndarray, retain: np.ndarray, metric: str, weights: tuple[np.ndarray, np.ndarray]):
    """SA of each bootstrap replicate (replicates,) for one run's per-document counts and given weights."""
    with np.errstate(invalid="ignore", divide="ignore"):
        d_forget = _drops(metric_values(np.asarray(forget, dtype=np.float64), metric, weights[0]))
        d_retain = _drops(metric_values(np.asarray(retain, dtype=np.float64), metric, weights[1]))
        return _areas(d_retain, d_forget)


def paired_difference(runs: dict[str, tuple], first: str, second: str, *, metric: str = "top1",
                      iterations: int = ITERATIONS, seed: int = SEED, level: float = LEVEL) -> list[float] | None:
    """95% interval of SA(first) - SA(second) over documents both runs were measured on, each replicate
    resampling the same documents for both (paired). `runs[name]` = (forget, retain) per-document counts."""
    (f_a, r_a), (f_b, r_b) = runs[first], runs[second]
    weights = replicates(np.asarray(f_a), np.asarray(r_a), iterations=iterations, seed=seed)
    difference = resampled_areas(f_a, r_a, metric, weights) - resampled_areas(f_b, r_b, metric, weights)
    return _percentile_interval(difference, level)
