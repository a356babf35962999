"""Scorings side by side on one model and target: SA with intervals, the paired difference of each to `abs` and
to the best classical scoring, and what each costs to collect. Written as `compare.json` and a plot.

Every scoring of a comparison was measured on the same evaluation documents, so differences are paired:
one bootstrap replicate resamples the same documents for both runs, which cancels the sampling noise the
two share and leaves the difference the scorings make.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rich.table import Table
from rich.text import Text

from . import intervals
from .naming import target_tag
from .schema import Results
from .separability import relative_drops

COMPARE_SCHEMA = "separ-eval/compare/v1"
CLASSICAL = ("abs", "std", "rms", "sqrt")
METRIC = "top1"


def _counts(results: Results) -> tuple:
    samples = results.samples
    return np.asarray(samples.forget.counts, dtype=np.float64), np.asarray(samples.retain.counts, dtype=np.float64)


def _same_documents(runs: dict[str, Results]) -> None:
    documents = {name: (r.samples.forget.documents, r.samples.retain.documents) for name, r in runs.items()}
    first = next(iter(documents.values()))
    differ = [name for name, docs in documents.items() if docs != first]
    if differ:
        raise ValueError(f"Runs {differ} were evaluated on other documents: a paired comparison needs the same data.")


def comparison(runs: dict[str, Results], costs: dict[str, float | None], *, reference: str = "abs",
               files: dict[str, str] | None = None) -> dict:
    """The compare.json object for runs of one model and target that differ only in their scoring."""
    _same_documents(runs)
    counts = {name: _counts(r) for name, r in runs.items()}
    present = [name for name in CLASSICAL if name in runs and runs[name].summary[METRIC].sa is not None]
    best = max(present, key=lambda name: runs[name].summary[METRIC].sa) if present else None
    any_run = next(iter(runs.values()))
    entries = {}
    for name, results in runs.items():
        summary = results.summary[METRIC]
        entry = {
            "file": (files or {}).get(name), "sa": summary.sa, "sa_ci": summary.sa_ci, "mdd": summary.mdd,
            "mdd_ci": summary.mdd_ci, "f_at_r5": summary.f_at_r5, "f_at_r5_ci": summary.f_at_r5_ci,
            "collect_s_per_step": costs.get(name),
            "collect_cost_x_abs": (costs[name] / costs[reference]) if costs.get(name) and costs.get(reference) else None,
        }
        for key, other in (("abs", reference), ("best_classical", best)):
            defined = other is not None and summary.sa is not None and runs[other].summary[METRIC].sa is not None
            entry[f"sa_diff_{key}"] = summary.sa - runs[other].summary[METRIC].sa if defined else None
            entry[f"sa_diff_{key}_ci"] = (intervals.paired_difference(counts, name, other, metric=METRIC)
                                          if defined and name != other else ([0.0, 0.0] if defined else None))
        entries[name] = entry
    return {
        "schema": COMPARE_SCHEMA,
        "model": any_run.model.id, "family": any_run.model.family, "n_params": any_run.model.n_params,
        "target": target_tag(any_run.target.name, any_run.target.reversed),
        "direction": f"forget {any_run.target.forget}, retain {any_run.target.retain}",
        "metric": METRIC, "reference": reference, "best_classical": best,
        "bootstrap": {"iterations": intervals.ITERATIONS, "seed": intervals.SEED, "level": intervals.LEVEL,
                      "paired": "the same documents resampled for both runs of a difference"},
        "scorings": entries,
    }


def _interval(value, bounds) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.3f} [{bounds[0]:+.3f}, {bounds[1]:+.3f}]" if bounds else f"{value:+.3f}"


def _with_error(value, bounds) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f} ± {(bounds[1] - bounds[0]) / 2:.3f}" if bounds else f"{value:.3f}"


def comparison_cells(obj: dict) -> list[dict[str, str]]:
    """Each scoring's formatted cells, best SA first: what the terminal table and the Markdown summary show."""
    cells = []
    for name, e in sorted(obj["scorings"].items(), key=lambda item: -(item[1]["sa"] if item[1]["sa"] is not None else -9)):
        cost = e["collect_s_per_step"]
        cells.append({
            "scoring": name, "sa": _with_error(e["sa"], e["sa_ci"]), "mdd": _with_error(e["mdd"], e["mdd_ci"]),
            "f_at_r5": _with_error(e["f_at_r5"], e["f_at_r5_ci"]),
            "diff_abs": _interval(e["sa_diff_abs"], e["sa_diff_abs_ci"]),
            "diff_best_classical": _interval(e["sa_diff_best_classical"], e["sa_diff_best_classical_ci"]),
            "collect_s": f"{cost:.1f}" if cost else "shared",
            "x_abs": f"{e['collect_cost_x_abs']:.2f}" if e["collect_cost_x_abs"] else "",
        })
    return cells


def comparison_table(obj: dict) -> Table:
    table = Table(title=Text(f"{obj['model']} · {obj['direction']} · SA ({obj['metric']}) by scoring; differences "
                             "paired over the same documents, 95% intervals"))
    for header in ("scoring", "SA", "MDD", "F@R5", f"ΔSA vs {obj['reference']}",
                   f"ΔSA vs best classical ({obj['best_classical']})", "collect s/step", "x abs"):
        table.add_column(header, justify="left" if header == "scoring" else "right")
    for row in comparison_cells(obj):
        table.add_row(Text(row["scoring"]), *(row[k] for k in ("sa", "mdd", "f_at_r5", "diff_abs", "diff_best_classical",
                                                                "collect_s", "x_abs")))
    return table


def comparison_png(runs: dict[str, Results], title: str) -> bytes:
    """Every scoring's dR -> dF curve (top1) on one panel, the diagonal dashed."""
    figure = Figure(figsize=(6, 6), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    ax.plot([-0.05, 1.05], [-0.05, 1.05], linestyle="--", color="grey", linewidth=1, label="dF = dR")
    for name, results in sorted(runs.items()):
        try:
            d_forget = relative_drops([s.forget.top1 for s in results.trajectory])
            d_retain = relative_drops([s.retain.top1 for s in results.trajectory])
        except ValueError:
            continue
        sa = results.summary[METRIC]
        ax.plot(d_retain, d_forget, marker="o", markersize=3, label=f"{name}  SA {_with_error(sa.sa, sa.sa_ci)}")
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.05)
    ax.set_aspect("equal")
    ax.set_xlabel("retain drop dR")
    ax.set_ylabel("forget drop dF")
    ax.set_title(title, fontsize="small")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="x-small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    figure.clear()
    return buffer.getvalue()

