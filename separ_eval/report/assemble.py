"""The measured part of a results file, from a run's step records: trajectory, summary with intervals,
per-step standard errors, and the per-document counts that let anyone recompute all three."""

from __future__ import annotations

import numpy as np

from . import intervals, separability

SIDES = ("forget", "retain")
STEP_KEYS = ("step", "pruned", "forget", "retain", "tasks")


def measured(records: list[dict], documents: dict[str, list[str]]) -> dict:
    """{"trajectory", "summary", "samples"} from records holding {step, pruned, forget, retain, [tasks],
    counts: {side: [[n, top1, top10, skip_n, skip_top1, skip_top10, loss_sum] per document]}}."""
    trajectory = [{k: r[k] for k in STEP_KEYS if k in r} for r in records]
    summary = separability.summarize(trajectory)
    if any("tasks" in r for r in trajectory):
        summary.update(separability.summarize_tasks([r for r in trajectory if "tasks" in r]))
    counts = {side: np.asarray([r["counts"][side] for r in records], dtype=np.float64) for side in SIDES}
    bounds, stderr = intervals.intervals(counts["forget"], counts["retain"])
    for metric, values in bounds.items():
        summary[metric].update(values)
    for record, errors in zip(trajectory, stderr):
        record["stderr"] = errors
    samples = {
        "unit": "document",
        "fields": list(intervals.COUNT_FIELDS),
        "bootstrap": {"iterations": intervals.ITERATIONS, "seed": intervals.SEED, "level": intervals.LEVEL},
        **{side: {"documents": list(documents[side]), "counts": [r["counts"][side] for r in records]} for side in SIDES},
    }
    return {"trajectory": trajectory, "summary": summary, "samples": samples}


def document_counts(rows) -> list[list]:
    """Per-document count rows as JSON: the counts as integers, the loss sum as a float."""
    return [[int(v) for v in row[:-1]] + [float(row[-1])] for row in rows]
