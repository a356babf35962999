"""Results as people read them: leaderboard rows and tables (terminal, Markdown, HTML, JSON), run reports."""

from __future__ import annotations

import html
import json
from rich.table import Table
from rich.text import Text

from .schema import Results

RENDER_FORMATS = ("table", "md", "json")  # the HTML page is report.page


def _params(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


def separability_cell(row: dict, key: str) -> str:
    """'0.748 ± 0.041' (a run: ± half its 95% interval); '0.055 ± 0.030 sd (0.021..0.091)' (a seed band)."""
    value = row[key]
    if value is None:
        return "n/a"
    if f"{key}_sd" in row:
        low, high = row[f"{key}_range"]
        return f"{value:.3f} ± {row[f'{key}_sd']:.3f} sd ({low:.3f}..{high:.3f})"
    interval = row.get(f"{key}_ci")
    return f"{value:.3f} ± {(interval[1] - interval[0]) / 2:.3f}" if interval else f"{value:.3f}"


def _start_end(side: str):
    return lambda row: f"{row[f'{side}_top1']:.3f} → {row[f'{side}_top1_end']:.3f}"


# (header, how a row shows it, numeric: right-aligned)
COLUMNS = (
    ("Model", lambda r: str(r["model"]), False),
    ("Family", lambda r: r["family"] or "", False),
    ("Params", lambda r: _params(r["n_params"]), False),
    ("Target", lambda r: r["target"], False),
    ("Method", lambda r: r["method"], False),
    ("Seeds", lambda r: str(r["seeds"]), True),
    ("Forget top1", _start_end("forget"), True),
    ("Retain top1", _start_end("retain"), True),
    ("SA top1", lambda r: separability_cell(r, "sa_top1"), True),
    ("MDD top1", lambda r: separability_cell(r, "mdd_top1"), True),
    ("F@R5 top1", lambda r: separability_cell(r, "f_at_r5_top1"), True),
    ("SA skip50 top1", lambda r: separability_cell(r, "sa_skip50_top1"), True),
)


def _markdown(rows: list[dict]) -> str:
    import pytablewriter

    writer = pytablewriter.MarkdownTableWriter(
        headers=[header for header, _, _ in COLUMNS],
        # GitHub renders inline HTML in tables: show ids like "<b>" literally.
        value_matrix=[[html.escape(show(row), quote=False) for _, show, _ in COLUMNS] for row in rows],
        type_hints=[pytablewriter.String] * len(COLUMNS), margin=1,
    )
    writer.column_styles = [pytablewriter.style.Style(align="right" if numeric else "left") for _, _, numeric in COLUMNS]
    return writer.dumps()


def _rich_table(rows: list[dict]) -> Table:
    table = Table(title="separ-eval leaderboard (± half the 95% interval; seed bands: ± sd, range)")
    for header, _, numeric in COLUMNS:
        table.add_column(header, justify="right" if numeric else "left")
    for row in rows:
        # Text, not str: a model id with brackets must not be read as rich markup.
        table.add_row(*(Text(show(row)) for _, show, _ in COLUMNS))
    return table


def render(rows: list[dict], fmt: str):
    """'table' gives a rich Table (print it with a rich Console); md and json give strings."""
    if fmt == "table":
        return _rich_table(rows)
    if fmt == "md":
        return _markdown(rows)
    if fmt == "json":
        return json.dumps(rows, indent=2)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(RENDER_FORMATS)}")


# ---------------------------------------------------------------- one run, in the terminal

def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


TRAJECTORY_METRICS = (("top1", "top1"), ("top10", "top10"), ("skip50_top1", "s50t1"), ("loss", "loss"))


def trajectory_table(results: Results) -> Table:
    from rich import box

    target = results.target
    table = Table(
        title=Text(f"Trajectory: forget {target.forget} (F), retain {target.retain} (R)"),
        box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True,
    )
    for header in ("\nstep", "ff\n%", "attn\n%"):
        table.add_column(header, justify="right", no_wrap=True)
    for side in ("F", "R"):
        for _, short in TRAJECTORY_METRICS:
            table.add_column(f"{side}\n{short}", justify="right", no_wrap=True, min_width=5)
    for record in results.trajectory:
        row = [str(record.step), f"{100 * record.pruned.ff:.1f}", f"{100 * record.pruned.attn:.1f}"]
        row += [_fmt(getattr(record, side).value(name)) for side in ("forget", "retain") for name, _ in TRAJECTORY_METRICS]
        table.add_row(*row)
    return table


def _with_interval(value, interval) -> str:
    if interval is None or value is None:
        return _fmt(value)
    return f"{value:.3f} ± {(interval[1] - interval[0]) / 2:.3f}"


def summary_table(results: Results) -> Table:
    table = Table(title="Separability (SA: 1 perfect, ~0 random; ± half the 95% interval over documents)")
    table.add_column("metric")
    for header in ("SA", "SA 95% interval", "MDD", "F@R5"):
        table.add_column(header, justify="right")
    for metric, values in results.summary.items():
        interval = f"[{values.sa_ci[0]:.3f}, {values.sa_ci[1]:.3f}]" if values.sa_ci else ""
        table.add_row(Text(metric), _with_interval(values.sa, values.sa_ci), interval,
                      _with_interval(values.mdd, values.mdd_ci), _with_interval(values.f_at_r5, values.f_at_r5_ci))
    return table
