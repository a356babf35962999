"""Results as people read them: leaderboard rows and tables (terminal, Markdown, HTML, JSON), run reports."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable

from rich.table import Table
from rich.text import Text

from .naming import method_tag, target_tag
from .schema import Results

RENDER_FORMATS = ("table", "md", "json", "html")


def _score(value) -> str:
    return "" if value is None else f"{value:.3f}"


def _params(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


# (row key, header, how md/html/table show the value)
COLUMNS = (
    ("model", "Model", str),
    ("family", "Family", lambda v: v or ""),
    ("n_params", "Params", _params),
    ("target", "Target", str),
    ("method", "Method", str),
    ("forget_top1", "Forget top1", _score),
    ("retain_top1", "Retain top1", _score),
    ("sa_top1", "SA top1", _score),
    ("mdd_top1", "MDD top1", _score),
    ("f_at_r5_top1", "F@R5 top1", _score),
    ("sa_skip50_top1", "SA skip50 top1", _score),
)


def _row(results: Results) -> dict:
    base = results.trajectory[0]
    top1, skip50 = results.summary["top1"], results.summary["skip50_top1"]
    return {
        "model": results.model.id,
        "family": results.model.family,
        "n_params": results.model.n_params,
        "target": target_tag(results.target.name, results.target.reversed),
        "method": method_tag(results.method.model_dump()),
        "forget_top1": base.forget.top1,
        "retain_top1": base.retain.top1,
        "sa_top1": top1.sa,
        "mdd_top1": top1.mdd,
        "f_at_r5_top1": top1.f_at_r5,
        "sa_skip50_top1": skip50.sa,
    }


def leaderboard_rows(results: Iterable) -> list[dict]:
    """One row per model x target x method, best SA on top1 first.

    Takes Results, or the (path, Results) pairs `store.collect_results` returns.
    Duplicates of one run keep the most recently created file's numbers.
    """
    latest: dict[tuple, tuple[str, dict]] = {}
    for item in results:
        obj = item[1] if isinstance(item, tuple) else item
        row = _row(obj)
        key = (row["model"], row["target"], row["method"])
        created = str((obj.environment or {}).get("created") or "")
        if key not in latest or created > latest[key][0]:
            latest[key] = (created, row)
    rows = [row for _, row in latest.values()]
    return sorted(rows, key=lambda r: (-r["sa_top1"], r["model"], r["target"], r["method"]))


def _markdown(rows: list[dict]) -> str:
    def cell(text: str) -> str:
        # GitHub renders inline HTML in tables: show ids like "<b>" literally.
        return html.escape(text, quote=False).replace("|", "\\|")

    lines = [
        "| " + " | ".join(header for _, header, _ in COLUMNS) + " |",
        "|" + "|".join("---:" if show is _score else "---" for _, _, show in COLUMNS) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(cell(show(row[key])) for key, _, show in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def _html(rows: list[dict]) -> str:
    head = "".join(f"<th>{html.escape(header)}</th>" for _, header, _ in COLUMNS)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(show(row[key]))}</td>" for key, _, show in COLUMNS) + "</tr>"
        for row in rows
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<title>separ-eval leaderboard</title>\n<style>\n"
        "body{font-family:system-ui,sans-serif;margin:2em}"
        "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3em .6em}"
        "th{background:#f3f3f3}td{font-variant-numeric:tabular-nums}\n"
        "</style>\n</head>\n<body>\n<h1>separ-eval leaderboard</h1>\n"
        f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>\n"
        "</body>\n</html>\n"
    )


def _rich_table(rows: list[dict]) -> Table:
    table = Table(title="separ-eval leaderboard")
    for _, header, show in COLUMNS:
        table.add_column(header, justify="right" if show is _score else "left")
    for row in rows:
        # Text, not str: a model id with brackets must not be read as rich markup.
        table.add_row(*(Text(show(row[key])) for key, _, show in COLUMNS))
    return table


def render(rows: list[dict], fmt: str):
    """'table' gives a rich Table (print it with a rich Console); md/json/html give strings."""
    if fmt == "table":
        return _rich_table(rows)
    if fmt == "md":
        return _markdown(rows)
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "html":
        return _html(rows)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(RENDER_FORMATS)}")


# ---------------------------------------------------------------- one run, in the terminal

def _fmt(value) -> str:
    return "" if value is None else f"{value:.3f}"


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


def summary_table(results: Results) -> Table:
    table = Table(title="Separability (SA: 1 perfect, ~0 random)")
    table.add_column("metric")
    for header in ("SA", "MDD", "F@R5"):
        table.add_column(header, justify="right")
    for metric, values in results.summary.items():
        table.add_row(Text(metric), _fmt(values.sa), _fmt(values.mdd), _fmt(values.f_at_r5))
    return table
