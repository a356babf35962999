"""Leaderboard rows: one per model x target x method, runs that differ only by seed folded into one band.

A single run's row gives each separability number with its 95% interval. Runs of one
method under several seeds (`--seeds`: the units of `random`, the data of other
scorings) become one row: the mean, the standard deviation across seeds, and the range.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable

from .naming import method_tag, seed_family, target_tag
from .schema import Results

HEADLINE = ("top1", "skip50_top1")  # metrics whose SA the table shows


def _run_row(results: Results) -> dict:
    first, last = results.trajectory[0], results.trajectory[-1]
    row = {
        "model": results.model.id,
        "family": results.model.family,
        "n_params": results.model.n_params,
        "target": target_tag(results.target.name, results.target.reversed),
        "method": method_tag(results.method.model_dump()),
        "seeds": 1,
        "forget_top1": first.forget.top1,
        "forget_top1_end": last.forget.top1,
        "retain_top1": first.retain.top1,
        "retain_top1_end": last.retain.top1,
    }
    for metric in HEADLINE:
        entry = results.summary[metric]
        for field in ("sa", "mdd", "f_at_r5"):
            row[f"{field}_{metric}"] = getattr(entry, field)
            row[f"{field}_{metric}_ci"] = getattr(entry, f"{field}_ci")
    return row


SEPARABILITY = ("sa_", "mdd_", "f_at_r5_")


def _band(rows: list[dict]) -> dict:
    """One row for the same method under several seeds: means, with sd and range of each separability number
    (a band reports its spread across seeds, not one run's interval)."""
    band = {**rows[0], "method": rows[0]["family_tag"], "seeds": len(rows)}
    numbers = [k for k in rows[0] if k.startswith((*SEPARABILITY, "forget_", "retain_")) and not k.endswith("_ci")]
    for key in numbers:
        values = [row[key] for row in rows]
        defined = all(v is not None for v in values)  # undefined in one seed: undefined for the band
        band[key] = statistics.fmean(values) if defined else None
        if key.startswith(SEPARABILITY):
            band[f"{key}_ci"] = None
            band[f"{key}_sd"] = statistics.stdev(values) if defined else None
            band[f"{key}_range"] = [min(values), max(values)] if defined else None
    return band


def leaderboard_rows(results: Iterable) -> list[dict]:
    """Rows best SA on top1 first. Takes Results, or the (path, Results) pairs `store.collect_results` returns.

    Duplicates of one run keep the most recently created file's numbers; runs that differ only by
    seed are one band row.
    """
    latest: dict[tuple, tuple[str, dict]] = {}
    for item in results:
        obj = item[1] if isinstance(item, tuple) else item
        row = _run_row(obj)
        row["family_tag"] = seed_family(obj.method.model_dump())
        key = (row["model"], row["target"], row["method"])
        created = str((obj.environment or {}).get("created") or "")
        if key not in latest or created > latest[key][0]:
            latest[key] = (created, row)
    groups: dict[tuple, list[dict]] = {}
    for _, row in latest.values():
        groups.setdefault((row["model"], row["target"], row["family_tag"]), []).append(row)
    rows = [_band(members) if len(members) > 1 else members[0] for members in groups.values()]
    for row in rows:
        row.pop("family_tag")
    return sorted(rows, key=lambda r: (-(r["sa_top1"] if r["sa_top1"] is not None else float("-inf")),
                                       r["model"], r["target"], r["method"]))
