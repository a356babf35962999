"""The cross-field rules of a results file: what a typed model alone cannot say.

Steps increase from step 0 and cumulative fractions never fall; the summary recomputes
from the trajectory; the trajectory recomputes from the per-document counts; and the
intervals and standard errors recompute from the same counts by the seeded bootstrap.
Each problem is one line that names its field.
"""

from __future__ import annotations

import numpy as np

from . import intervals
from .separability import ACCURACY_METRICS, summarize, summarize_tasks

TOLERANCE = 1e-9
SUMMARY_FIELDS = ("sa", "mdd", "f_at_r5")
INTERVAL_FIELDS = ("sa_ci", "mdd_ci", "f_at_r5_ci")
UNIT_TYPES = ("ff", "attn")


def _same(stated, recomputed) -> bool:
    """Equal within TOLERANCE: numbers, or lists of them; None only matches None."""
    if stated is None or recomputed is None:
        return stated is None and recomputed is None
    return bool(np.allclose(stated, recomputed, rtol=0, atol=TOLERANCE))


def trajectory_problems(trajectory) -> list[str]:
    if not trajectory:
        return ["trajectory: empty: needs at least step 0"]
    problems = []
    if trajectory[0].step != 0:
        problems.append(f"trajectory[0].step: the first record must be step 0, got {trajectory[0].step}")
    if any(getattr(trajectory[0].pruned, unit) != 0 for unit in UNIT_TYPES):
        problems.append("trajectory[0].pruned: step 0 is the unpruned model: fractions must be 0")
    for i in range(1, len(trajectory)):
        previous, current = trajectory[i - 1], trajectory[i]
        if current.step <= previous.step:
            problems.append(f"trajectory[{i}].step: steps must increase: {current.step} after {previous.step}")
        for unit in UNIT_TYPES:
            before, now = getattr(previous.pruned, unit), getattr(current.pruned, unit)
            if now < before:
                problems.append(f"trajectory[{i}].pruned.{unit}: cumulative fraction fell from {before} to {now}")
    return problems


def summary_problems(summary: dict, trajectory: list[dict]) -> list[str]:
    problems = [f"summary.{metric}: missing" for metric in ACCURACY_METRICS if metric not in summary]
    try:
        expected = {**summarize(trajectory), **summarize_tasks(trajectory)}
    except ValueError as err:
        return [*problems, f"summary: cannot be recomputed from the trajectory: {err}"]
    # Keys the trajectory cannot reproduce are extensions; everything it can must match.
    for metric, recomputed in expected.items():
        stated = summary.get(metric)
        if stated is None:
            continue
        for field in SUMMARY_FIELDS:
            value, expected_value = getattr(stated, field), recomputed[field]
            if value is None or expected_value is None:
                if value is not expected_value:
                    problems.append(f"summary.{metric}.{field}: {value!r} does not match {expected_value!r} "
                                    "recomputed from the trajectory")
                continue
            if not abs(value - expected_value) <= TOLERANCE:
                problems.append(f"summary.{metric}.{field}: {value!r} does not match {recomputed[field]!r} "
                                "recomputed from the trajectory")
    return problems


def sample_problems(results) -> list[str]:
    """The per-document counts reproduce the trajectory, and the intervals and standard errors recompute."""
    samples, trajectory = results.samples, results.trajectory
    stated_ci = any(getattr(entry, f) is not None for entry in results.summary.values() for f in INTERVAL_FIELDS)
    if samples is None:
        return ["summary: intervals are given but no samples to recompute them from"] if stated_ci else []
    if samples.fields != list(intervals.COUNT_FIELDS):
        return [f"samples.fields: expected {list(intervals.COUNT_FIELDS)}, got {samples.fields}"]
    problems, arrays = [], {}
    for side in ("forget", "retain"):
        side_samples = getattr(samples, side)
        shape = (len(trajectory), len(side_samples.documents), len(intervals.COUNT_FIELDS))
        array = np.asarray(side_samples.counts, dtype=np.float64) if side_samples.counts else np.zeros((0,))
        if array.shape != shape or shape[1] == 0:
            problems.append(f"samples.{side}.counts: expected steps x documents x fields {shape}, got {array.shape}")
            continue
        arrays[side] = array
        for i, step in enumerate(trajectory):
            stated = getattr(step, side)
            for metric in ACCURACY_METRICS:
                value = float(intervals.metric_values(array[i : i + 1], metric)[0])
                if not abs(value - stated.value(metric)) <= TOLERANCE:
                    problems.append(f"trajectory[{i}].{side}.{metric}: {stated.value(metric)!r} does not match "
                                    f"{value!r} recomputed from samples.{side}.counts")
    if problems:
        return problems
    boot = samples.bootstrap
    ci, stderr = intervals.intervals(arrays["forget"], arrays["retain"], iterations=boot.iterations, seed=boot.seed,
                                     level=boot.level)
    for metric, recomputed in ci.items():
        entry = results.summary.get(metric)
        for field in INTERVAL_FIELDS:
            stated = getattr(entry, field, None) if entry is not None else None
            if not _same(stated, recomputed[field]):
                problems.append(f"summary.{metric}.{field}: {stated!r} does not match {recomputed[field]!r} "
                                "recomputed from the samples")
    for i, step in enumerate(trajectory):
        for side in ("forget", "retain"):
            stated = getattr(step.stderr, side, None) if step.stderr is not None else None
            expected = stderr[i][side]
            if stated is None or stated.keys() != expected.keys() or not all(_same(stated[k], v) for k, v in expected.items()):
                problems.append(f"trajectory[{i}].stderr.{side}: {stated!r} does not match {expected!r} "
                                "recomputed from the samples")
    return problems
