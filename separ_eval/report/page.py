"""The leaderboard as one self-contained HTML page: a sortable, filterable table of every run, seed bands,
one chart per target overlaying the dR -> dF curves of every model, and each run's trajectory and plot.

Everything is inline (CSS, a little JS, SVG charts, PNG plots as data URIs), so the file opens offline.
The page is a Jinja2 template (`templates/leaderboard.html.j2`); this module only prepares its data.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import jinja2

from .leaderboard import leaderboard_rows
from .naming import method_tag, seed_family, target_tag
from .plots import trajectory_png
from .render import COLUMNS, separability_cell
from .schema import Results
from .separability import relative_drops

CHART = {"size": 320, "pad": 36}  # pixels of an SVG chart; drops from LOW to HIGH fill the square
LOW, HIGH = -0.1, 1.05
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def _xy(d_retain: float, d_forget: float) -> tuple[float, float]:
    span = CHART["size"] - 2 * CHART["pad"]
    clamp = lambda v: min(HIGH, max(LOW, v))  # noqa: E731
    x = CHART["pad"] + (clamp(d_retain) - LOW) / (HIGH - LOW) * span
    y = CHART["size"] - CHART["pad"] - (clamp(d_forget) - LOW) / (HIGH - LOW) * span
    return round(x, 1), round(y, 1)


def _curve(results: list[Results], metric: str = "top1") -> list[tuple[float, float]] | None:
    """The (dR, dF) points of a run, averaged over the runs of a seed band; None if undefined."""
    curves = []
    for obj in results:
        try:
            d_forget = relative_drops([s.forget.value(metric) for s in obj.trajectory])
            d_retain = relative_drops([s.retain.value(metric) for s in obj.trajectory])
        except ValueError:
            return None
        curves.append(list(zip(d_retain, d_forget)))
    length = min(len(c) for c in curves)
    return [tuple(sum(c[i][k] for c in curves) / len(curves) for k in (0, 1)) for i in range(length)]


def _charts(found: list[tuple[Path, Results]]) -> list[dict]:
    """Per target and method family: one curve per model (seed bands drawn as their mean curve)."""
    groups: dict[tuple, dict[str, list[Results]]] = defaultdict(lambda: defaultdict(list))
    for _, obj in found:
        key = (target_tag(obj.target.name, obj.target.reversed), seed_family(obj.method.model_dump()))
        groups[key][obj.model.id].append(obj)
    models = sorted({obj.model.id for _, obj in found})
    colour = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}
    charts = []
    for (target, method), by_model in sorted(groups.items()):
        curves = []
        for model, runs in sorted(by_model.items()):
            points = _curve(runs)
            if points is None:
                continue
            svg = " ".join(f"{'M' if i == 0 else 'L'}{x},{y}" for i, (x, y) in enumerate(_xy(*p) for p in points))
            curves.append({"model": model, "path": svg, "colour": colour[model], "seeds": len(runs),
                           "end": _xy(*points[-1])})
        charts.append({"target": target, "method": method, "curves": curves,
                       "diagonal": [_xy(LOW, LOW), _xy(HIGH, HIGH)], "axis": [_xy(0, 0), _xy(1, 1)]})
    return charts


def _run(path: Path, obj: Results, index: int) -> dict:
    """One results file: its table row and its detail (trajectory, plot)."""
    row = leaderboard_rows([obj])[0]
    cells = [{"text": show(row), "value": _sort_value(header, row)} for header, show, _ in COLUMNS]
    steps = []
    for step in obj.trajectory:
        errors = step.stderr
        steps.append({
            "step": step.step, "ff": 100 * step.pruned.ff, "attn": 100 * step.pruned.attn,
            "forget": step.forget.top1, "retain": step.retain.top1,
            "forget_se": errors.forget.get("top1") if errors else None,
            "retain_se": errors.retain.get("top1") if errors else None,
            "forget_loss": step.forget.loss, "retain_loss": step.retain.loss,
        })
    plot = base64.b64encode(trajectory_png(obj, metrics=("top1", "skip50_top1"), dpi=60)).decode()
    return {
        "id": f"run-{index}", "file": path.name, "cells": cells, "target": row["target"],
        "family_tag": seed_family(obj.method.model_dump()), "method": method_tag(obj.method.model_dump()),
        "model": obj.model.id, "steps": steps, "plot": plot,
        "summary": {m: separability_cell(leaderboard_rows([obj])[0], f"sa_{m}") for m in ("top1", "skip50_top1")},
        "data": obj.data.model_dump(), "environment": obj.environment or {},
    }


def _sort_value(header: str, row: dict):
    """What a column sorts by: the number behind a cell, or its text."""
    keys = {"Params": "n_params", "Seeds": "seeds", "Forget top1": "forget_top1", "Retain top1": "retain_top1",
            "SA top1": "sa_top1", "MDD top1": "mdd_top1", "F@R5 top1": "f_at_r5_top1",
            "SA skip50 top1": "sa_skip50_top1"}
    value = row.get(keys[header]) if header in keys else None
    return "" if value is None and header in keys else (value if header in keys else None)


def render_page(found: Iterable[tuple[Path, Results]]) -> str:
    """The whole page for (path, Results) pairs, as `store.collect_results` returns them."""
    found = sorted(found, key=lambda item: item[0].name)
    runs = [_run(path, obj, i) for i, (path, obj) in enumerate(found)]
    bands = [row for row in leaderboard_rows(found) if row["seeds"] > 1]
    charts = _charts(found)
    counts = {m: sum(c["method"] == m for c in charts) for m in {c["method"] for c in charts}}
    # the charts first show the method most targets have, the default FF abs if it is one of those
    default_method = max(sorted(counts), key=lambda m: (counts[m], m.startswith("ff-abs-")))
    environment = jinja2.Environment(loader=jinja2.PackageLoader("separ_eval.report", "templates"),
                                     autoescape=True, trim_blocks=True, lstrip_blocks=True)
    template = environment.get_template("leaderboard.html.j2")
    return template.render(
        columns=[{"header": header, "numeric": numeric} for header, _, numeric in COLUMNS],
        runs=runs, bands=[{"cells": [show(row) for _, show, _ in COLUMNS]} for row in bands], charts=charts,
        targets=sorted({r["target"] for r in runs}), methods=sorted({r["family_tag"] for r in runs}),
        default_method=default_method, chart=CHART,
    )
