"""Trajectory plots: retain drop against forget drop, one panel per accuracy metric."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

# Figure + the Agg canvas directly, not pyplot: no global backend switch, no
# figure registry to leak from, safe in headless runs and threads.
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .naming import method_tag, target_tag
from .schema import Results
from .separability import ACCURACY_METRICS, relative_drops, separability_area


def plot_trajectory(results: Results, path, metrics: Sequence[str] = ACCURACY_METRICS) -> Path:
    """Write a PNG of dF against dR per metric; above the dashed diagonal is separation."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(trajectory_png(results, metrics))
    return path


def trajectory_png(results: Results, metrics: Sequence[str] = ACCURACY_METRICS, dpi: int = 100) -> bytes:
    """The trajectory plot as PNG bytes (one panel per metric, ±1 standard error on every step)."""
    trajectory = results.trajectory
    columns = 2 if len(metrics) > 1 else 1
    rows = -(-len(metrics) // columns)
    figure = Figure(figsize=(5 * columns, 4.6 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()

    for ax, metric in zip(axes, metrics):
        try:
            d_forget = relative_drops([record.forget.value(metric) for record in trajectory])
            d_retain = relative_drops([record.retain.value(metric) for record in trajectory])
        except ValueError as undefined:  # e.g. a metric whose step-0 value is 0
            ax.set_title(f"{metric}: {undefined}", fontsize="small")
            ax.set_axis_off()
            continue
        area = separability_area(d_retain, d_forget)
        low = min(0.0, *d_retain, *d_forget) - 0.02
        high = max(1.0, *d_retain, *d_forget) + 0.02
        ax.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1, label="dF = dR")
        # Step 0 is (0, 0): relative drops of the unpruned model. Error bars: the bootstrap standard error of
        # each step's metric, relative to the step-0 value (the drop's scale).
        errors = [record.stderr for record in trajectory]
        if all(e is not None for e in errors):
            base_f, base_r = trajectory[0].forget.value(metric), trajectory[0].retain.value(metric)
            ax.errorbar(d_retain, d_forget, xerr=[e.retain[metric] / base_r for e in errors],
                        yerr=[e.forget[metric] / base_f for e in errors], marker="o", markersize=3, capsize=2,
                        elinewidth=0.8, label="pruning steps (± 1 s.e.)")
        else:
            ax.plot(d_retain, d_forget, marker="o", markersize=3, label="pruning steps")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_aspect("equal")
        ax.set_xlabel("retain drop dR")
        ax.set_ylabel("forget drop dF")
        interval = results.summary[metric].sa_ci if metric in results.summary else None
        shown = f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""
        ax.set_title(f"{metric}   SA = {area:.3f}{shown}")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
    for unused in axes[len(metrics):]:
        unused.set_visible(False)

    target = results.target
    figure.suptitle(
        f"{results.model.id} · {target_tag(target.name, target.reversed)} · {method_tag(results.method.model_dump())}"
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    figure.clear()  # frees the artists now; the figure was never registered with pyplot
    return buffer.getvalue()
