"""Separability metrics (SA, MDD, F@R5) from a prune-then-evaluate trajectory.

All functions take per-step sequences that start at step 0 (the unpruned
model), so drops start at 0. Metrics must be higher-is-better (accuracies):
SA's (1, 1) corner assumes both drops end near 1, which a loss never does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

ACCURACY_METRICS = ("top1", "top10", "skip50_top1", "skip50_top10")
RETAIN_DROP_THRESHOLD = 0.05

# lm-eval metric names (before the ",filter" suffix) that are not higher-is-better
# scores, so a relative drop of them means nothing for separability.
_NOT_A_SCORE = ("stderr", "perplexity", "bits_per_byte", "loss", "ppl")


def relative_drops(values: Sequence[float]) -> list[float]:
    """1 - v_s / v_0 for each step s: 0 at step 0, 1 when the score is gone."""
    if not values:
        raise ValueError("relative_drops needs at least the step-0 value")
    base = values[0]
    if base == 0 or not math.isfinite(base):
        raise ValueError(f"relative drop undefined: the step-0 value is {base}")
    return [1.0 - value / base for value in values]


def _check_pair(d_retain: Sequence[float], d_forget: Sequence[float]) -> None:
    if len(d_retain) != len(d_forget):
        raise ValueError(
            f"retain and forget drops differ in length ({len(d_retain)} vs {len(d_forget)})"
        )
    if not d_retain:
        raise ValueError("need at least one step (step 0)")


def separability_area(d_retain: Sequence[float], d_forget: Sequence[float]) -> float:
    """Twice the signed area between the (dR, dF) curve and the diagonal.

    The polygon (0,0), (dR(s), dF(s)) in step order, (1,1), closed along the
    diagonal, is clockwise when the curve lies above it; the shoelace sum is
    then negative, hence the -2. Self-crossing curves net out their loops.
    """
    _check_pair(d_retain, d_forget)
    points = [(0.0, 0.0), *zip(d_retain, d_forget), (1.0, 1.0)]
    twice_signed_area = sum(
        x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1])
    )
    return 0.0 - twice_signed_area  # not -x: avoids printing "-0.000" for a zero area


def max_differential_drop(d_retain: Sequence[float], d_forget: Sequence[float]) -> float:
    """max_s dF(s) - dR(s); step 0 contributes 0, so the result is never negative."""
    _check_pair(d_retain, d_forget)
    return max(0.0, *(f - r for r, f in zip(d_retain, d_forget)))


def forget_drop_at_retain_drop(
    d_retain: Sequence[float],
    d_forget: Sequence[float],
    threshold: float = RETAIN_DROP_THRESHOLD,
) -> float:
    """dF where dR first reaches `threshold`, interpolated linearly between steps.

    If dR never reaches it, the final dF: the most forgetting seen within budget.
    """
    _check_pair(d_retain, d_forget)
    for s, (r, f) in enumerate(zip(d_retain, d_forget)):
        if r < threshold:
            continue
        if s == 0:
            return f
        r_prev, f_prev = d_retain[s - 1], d_forget[s - 1]
        t = (threshold - r_prev) / (r - r_prev)  # r_prev < threshold <= r
        return f_prev + t * (f - f_prev)
    return d_forget[-1]


def separability(forget: Sequence[float], retain: Sequence[float]) -> dict[str, float]:
    """SA, MDD and F@R5 from raw per-step forget and retain scores."""
    d_forget, d_retain = relative_drops(forget), relative_drops(retain)
    return {
        "sa": separability_area(d_retain, d_forget),
        "mdd": max_differential_drop(d_retain, d_forget),
        "f_at_r5": forget_drop_at_retain_drop(d_retain, d_forget),
    }


def summarize(
    trajectory: Sequence[Mapping], metrics: Sequence[str] = ACCURACY_METRICS
) -> dict[str, dict[str, float]]:
    """{metric: {"sa", "mdd", "f_at_r5"}} from a results-schema trajectory (step order).

    A metric whose step-0 value is 0 (or not a number) has no relative drop: its numbers are None and
    `undefined` says why, so one degenerate metric does not cost a run its other results.
    """
    summary = {}
    for metric in metrics:
        try:
            forget = [record["forget"][metric] for record in trajectory]
            retain = [record["retain"][metric] for record in trajectory]
        except KeyError as missing:
            raise ValueError(f"trajectory lacks {missing} needed for metric {metric!r}") from None
        try:
            summary[metric] = separability(forget, retain)
        except ValueError as err:
            summary[metric] = {"sa": None, "mdd": None, "f_at_r5": None, "undefined": str(err)}
    return summary


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_score_metric(metric: str) -> bool:
    name = metric.split(",")[0]
    return not any(word in name for word in _NOT_A_SCORE)


def _task_series(trajectory: Sequence[Mapping], side: str) -> dict[tuple[str, str], list[float]]:
    """(task, metric) -> per-step scores, kept only when numeric at every step."""
    series: dict[tuple[str, str], list[float]] = {}
    for s, record in enumerate(trajectory):
        tasks = (record.get("tasks") or {}).get(side) or {}
        seen = {
            (task, metric): value
            for task, scores in tasks.items()
            if isinstance(scores, Mapping)
            for metric, value in scores.items()
            if _is_number(value) and _is_score_metric(metric)
        }
        if s == 0:
            series = {key: [value] for key, value in seen.items()}
        else:
            series = {key: [*values, seen[key]] for key, values in series.items() if key in seen}
    return series


def summarize_tasks(trajectory: Sequence[Mapping]) -> dict[str, dict[str, float]]:
    """Separability of each forget-side lm-eval task score, keyed "task/metric".

    The retain reference for a forget (task, metric) is the per-step mean of that
    same metric name over all retain-side tasks, so only like scales are compared
    ("acc,none" with "acc,none"). Skipped: metrics that are not higher-is-better
    scores (stderr, perplexity, bits_per_byte, loss), series missing at any step,
    metrics no retain task reports, and zero base scores.
    """
    forget_series = _task_series(trajectory, "forget")
    retain_series = _task_series(trajectory, "retain")
    summary = {}
    for (task, metric), forget in sorted(forget_series.items()):
        retain_runs = [values for (_, m), values in retain_series.items() if m == metric]
        if not retain_runs:
            continue
        retain = [sum(step) / len(step) for step in zip(*retain_runs)]
        if forget[0] == 0 or retain[0] == 0:
            continue
        summary[f"{task}/{metric}"] = separability(forget, retain)
    return summary
