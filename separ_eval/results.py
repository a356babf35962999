"""Leaderboard results files (schema `separ-eval/results/v1`): check, write, gather, render.

Validation is hand-written so the messages can name the exact field and the
package needs no jsonschema. The summary is recomputed from the trajectory, so a
published number can always be traced back to the per-step measurements.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from separ_eval.paths import atomic_write
from separ_eval.separability import ACCURACY_METRICS, summarize, summarize_tasks

SCHEMA = "separ-eval/results/v1"
SUMMARY_TOLERANCE = 1e-9
SUMMARY_FIELDS = ("sa", "mdd", "f_at_r5")
UNIT_TYPES = ("ff", "attn")
REQUIRED_CORPUS_METRICS = (*ACCURACY_METRICS, "loss")
RENDER_FORMATS = ("table", "md", "json", "html")

_SHA256 = re.compile(r"[0-9a-f]{64}")


class ResultsError(Exception):
    """A results file that cannot be read or breaks the schema."""

    def __init__(self, path, problems: list[str]):
        self.path = Path(path)
        self.problems = list(problems)
        listing = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{self.path}: invalid {SCHEMA} results:\n{listing}")


# ---------------------------------------------------------------- validation


def _type_name(value) -> str:
    return "null" if value is None else type(value).__name__


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Checker:
    """Collects problems as 'dotted.path: what is wrong'."""

    def __init__(self):
        self.problems: list[str] = []

    def report(self, where: str, problem: str) -> None:
        self.problems.append(f"{where}: {problem}")

    def field(self, obj: Mapping, key: str, where: str, check, expected: str):
        """Return obj[key] if present and check(value) holds, else report and return None."""
        path = f"{where}.{key}" if where else key
        if key not in obj:
            self.report(path, "missing")
            return None
        value = obj[key]
        if not check(value):
            self.report(path, f"expected {expected}, got {_type_name(value)} ({value!r:.60})")
            return None
        return value

    def mapping(self, obj: Mapping, key: str, where: str = ""):
        return self.field(obj, key, where, lambda v: isinstance(v, dict), "an object")

    def string(self, obj: Mapping, key: str, where: str):
        return self.field(obj, key, where, lambda v: isinstance(v, str) and v != "", "a non-empty string")

    def integer(self, obj: Mapping, key: str, where: str, minimum: int = 0):
        return self.field(
            obj, key, where, lambda v: _is_int(v) and v >= minimum, f"an integer >= {minimum}"
        )

    def fraction(self, obj: Mapping, key: str, where: str):
        return self.field(
            obj, key, where, lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]"
        )

    def boolean(self, obj: Mapping, key: str, where: str):
        return self.field(obj, key, where, lambda v: isinstance(v, bool), "true or false")


def _check_model(check: _Checker, model: dict) -> None:
    check.string(model, "id", "model")
    check.integer(model, "n_params", "model", minimum=1)
    for optional in ("revision", "family", "dtype"):
        if model.get(optional) is not None and not isinstance(model[optional], str):
            check.report(f"model.{optional}", f"expected a string or null, got {_type_name(model[optional])}")


def _check_method(check: _Checker, method: dict) -> None:
    for unit in UNIT_TYPES:
        check.fraction(method, f"{unit}_frac", "method")
    check.string(method, "attn_unit", "method")
    check.integer(method, "steps", "method")
    scoring = check.mapping(method, "scoring", "method")
    if scoring is not None:
        for unit in UNIT_TYPES:
            check.string(scoring, unit, "method.scoring")
    check.string(method, "offset", "method")
    check.boolean(method, "recollect", "method")
    check.integer(method, "collect_tokens", "method")
    check.integer(method, "eval_tokens", "method")
    check.integer(method, "seed", "method")


def _check_record(check: _Checker, record, where: str) -> bool:
    """Check one trajectory step; True when it is usable for recomputing the summary."""
    if not isinstance(record, dict):
        check.report(where, f"expected an object, got {_type_name(record)}")
        return False
    before = len(check.problems)
    check.integer(record, "step", where)
    pruned = check.mapping(record, "pruned", where)
    if pruned is not None:
        for unit in UNIT_TYPES:
            check.fraction(pruned, unit, f"{where}.pruned")
    for side in ("forget", "retain"):
        metrics = check.mapping(record, side, where)
        if metrics is None:
            continue
        for name in REQUIRED_CORPUS_METRICS:
            if name not in metrics:
                check.report(f"{where}.{side}.{name}", "missing")
        for name, value in metrics.items():
            if not _is_number(value):
                check.report(f"{where}.{side}.{name}", f"expected a number, got {_type_name(value)}")
            elif name in ACCURACY_METRICS and not 0 <= value <= 1:
                check.report(f"{where}.{side}.{name}", f"accuracy {value!r} outside [0, 1]")
    tasks = record.get("tasks")
    if tasks is not None:
        if not isinstance(tasks, dict):
            check.report(f"{where}.tasks", f"expected an object, got {_type_name(tasks)}")
        else:
            for side, per_task in tasks.items():
                if not isinstance(per_task, dict) or not all(isinstance(v, dict) for v in per_task.values()):
                    check.report(f"{where}.tasks.{side}", "expected {task: {metric: value}}")
    return len(check.problems) == before


def _check_trajectory(check: _Checker, trajectory: list) -> bool:
    if not trajectory:
        check.report("trajectory", "empty: needs at least step 0")
        return False
    usable = all([_check_record(check, record, f"trajectory[{i}]") for i, record in enumerate(trajectory)])
    if not usable:
        return False
    if trajectory[0]["step"] != 0:
        check.report("trajectory[0].step", f"the first record must be step 0, got {trajectory[0]['step']}")
    if any(trajectory[0]["pruned"][unit] != 0 for unit in UNIT_TYPES):
        check.report("trajectory[0].pruned", "step 0 is the unpruned model: fractions must be 0")
    for i in range(1, len(trajectory)):
        previous, current = trajectory[i - 1], trajectory[i]
        if current["step"] <= previous["step"]:
            check.report(
                f"trajectory[{i}].step",
                f"steps must increase: {current['step']} after {previous['step']}",
            )
        for unit in UNIT_TYPES:
            if current["pruned"][unit] < previous["pruned"][unit]:
                check.report(
                    f"trajectory[{i}].pruned.{unit}",
                    f"cumulative fraction fell from {previous['pruned'][unit]} to {current['pruned'][unit]}",
                )
    return True


def _check_summary(check: _Checker, summary: dict, trajectory: list) -> None:
    try:
        expected = {**summarize(trajectory), **summarize_tasks(trajectory)}
    except ValueError as err:
        check.report("summary", f"cannot be recomputed from the trajectory: {err}")
        return
    for metric in ACCURACY_METRICS:
        if metric not in summary:
            check.report(f"summary.{metric}", "missing")
    # Keys the trajectory cannot reproduce are extensions; everything it can must match.
    for metric, recomputed in expected.items():
        stated = summary.get(metric)
        if stated is None:
            continue
        if not isinstance(stated, dict):
            check.report(f"summary.{metric}", f"expected an object, got {_type_name(stated)}")
            continue
        for field in SUMMARY_FIELDS:
            value = stated.get(field)
            if not _is_number(value):
                check.report(f"summary.{metric}.{field}", f"expected a number, got {_type_name(value)}")
            elif not abs(value - recomputed[field]) <= SUMMARY_TOLERANCE:
                check.report(
                    f"summary.{metric}.{field}",
                    f"{value!r} does not match {recomputed[field]!r} recomputed from the trajectory",
                )


def validate(obj) -> list[str]:
    """Problems with a results object, one readable line each; empty when valid."""
    check = _Checker()
    if not isinstance(obj, dict):
        return [f"results must be a JSON object, got {_type_name(obj)}"]
    schema = obj.get("schema")
    if schema != SCHEMA:
        check.report("schema", f"expected {SCHEMA!r}, got {schema!r}")

    model = check.mapping(obj, "model")
    if model is not None:
        _check_model(check, model)
    target = check.mapping(obj, "target")
    if target is not None:
        for key in ("name", "forget", "retain"):
            check.string(target, key, "target")
        check.boolean(target, "reversed", "target")
    method = check.mapping(obj, "method")
    if method is not None:
        _check_method(check, method)
    data = check.mapping(obj, "data")
    if data is not None:
        for side in ("forget", "retain"):
            corpus = check.mapping(data, side, "data")
            if corpus is not None:
                check.string(corpus, "source", f"data.{side}")
                check.field(
                    corpus, "sha256", f"data.{side}",
                    lambda v: isinstance(v, str) and _SHA256.fullmatch(v) is not None,
                    "64 lowercase hex digits",
                )
    for optional in ("environment", "timing"):
        if optional in obj and not isinstance(obj[optional], dict):
            check.report(optional, f"expected an object, got {_type_name(obj[optional])}")

    trajectory = check.field(obj, "trajectory", "", lambda v: isinstance(v, list), "a list")
    trajectory_ok = trajectory is not None and _check_trajectory(check, trajectory)
    summary = check.mapping(obj, "summary")
    if summary is not None and trajectory_ok:
        _check_summary(check, summary, trajectory)
    return check.problems


def load_results(path) -> dict:
    """Read and validate one results file; ResultsError says everything that is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ResultsError(path, [f"cannot read: {err}"]) from err
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise ResultsError(path, [f"invalid JSON: {err}"]) from err
    problems = validate(obj)
    if problems:
        raise ResultsError(path, problems)
    return obj


# ---------------------------------------------------------------- naming and writing


def _slug(text: str) -> str:
    """Lowercase file-name-safe text; '/' becomes '--' so org/name stays readable and unique."""
    text = text.strip().lower().replace("/", "--")
    text = re.sub(r"[^a-z0-9._-]+", "-", text)
    return text.strip("-.") or "unnamed"


def _fraction(value: float) -> str:
    return format(value, "g")


def method_tag(method: Mapping) -> str:
    """Short readable tag for the settings that distinguish runs, e.g. 'ff-abs-0.05x5'."""
    steps = method["steps"]
    units = []
    if method["ff_frac"]:
        units.append(f"ff-{_slug(method['scoring']['ff'])}-{_fraction(method['ff_frac'])}x{steps}")
    if method["attn_frac"]:
        head = "head-" if method["attn_unit"] == "head" else ""
        scoring = _slug(method["scoring"]["attn"])
        units.append(f"attn-{head}{scoring}-{_fraction(method['attn_frac'])}x{steps}")
    parts = ["+".join(units) or "noprune"]
    if method["offset"] == "mean":
        parts.append("mean")
    if not method["recollect"]:
        parts.append("norecollect")
    if method["seed"]:
        parts.append(f"seed{method['seed']}")
    return "-".join(parts)


def target_tag(target: str, reversed: bool) -> str:
    return _slug(target) + ("-reversed" if reversed else "")


def run_name(model_id: str, target: str, reversed: bool, method: Mapping) -> str:
    """File stem for one model x target x method, e.g. 'smollm2-135m__code__ff-abs-0.05x5'."""
    return f"{_slug(model_id)}__{target_tag(target, reversed)}__{method_tag(method)}"


def _same_run(a: Mapping, b: Mapping) -> bool:
    return all(a.get(key) == b.get(key) for key in ("model", "target", "method"))


def write_results(obj: dict, directory) -> Path:
    """Validate and write atomically; re-running the same run replaces its file.

    Raises ResultsError for an invalid object and FileExistsError if the file name
    is taken by a different run (or by something that is not a results file).
    """
    directory = Path(directory)
    problems = validate(obj)
    if problems:
        raise ResultsError(directory, problems)
    target = obj["target"]
    path = directory / f"{run_name(obj['model']['id'], target['name'], target['reversed'], obj['method'])}.json"
    if path.exists():
        try:
            existing = load_results(path)
        except ResultsError as err:
            raise FileExistsError(f"{path} exists and is not a valid results file; not overwriting it") from err
        if not _same_run(existing, obj):
            raise FileExistsError(
                f"{path} holds a different run (model, target or method differ); not overwriting it"
            )
    directory.mkdir(parents=True, exist_ok=True)
    def write(tmp_path: str) -> None:
        with open(tmp_path, "w", encoding="utf-8") as tmp:
            json.dump(obj, tmp, indent=2)
            tmp.write("\n")
            tmp.flush()
            os.fsync(tmp.fileno())

    atomic_write(path, write)
    return path


def collect(directory) -> tuple[list[tuple[Path, dict]], list[tuple[Path, str]]]:
    """Load every *.json in directory: (valid results, (path, reason) for the rest)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise NotADirectoryError(f"results directory not found: {directory}")
    results, errors = [], []
    for path in sorted(directory.glob("*.json")):
        try:
            results.append((path, load_results(path)))
        except ResultsError as err:
            errors.append((path, str(err)))
    return results, errors


# ---------------------------------------------------------------- leaderboard

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


def _row(obj: Mapping) -> dict:
    base = obj["trajectory"][0]
    target = obj["target"]
    top1, skip50 = obj["summary"]["top1"], obj["summary"]["skip50_top1"]
    return {
        "model": obj["model"]["id"],
        "family": obj["model"].get("family"),
        "n_params": obj["model"]["n_params"],
        "target": target_tag(target["name"], target["reversed"]),
        "method": method_tag(obj["method"]),
        "forget_top1": base["forget"]["top1"],
        "retain_top1": base["retain"]["top1"],
        "sa_top1": top1["sa"],
        "mdd_top1": top1["mdd"],
        "f_at_r5_top1": top1["f_at_r5"],
        "sa_skip50_top1": skip50["sa"],
    }


def leaderboard_rows(results: Iterable) -> list[dict]:
    """One row per model x target x method, best SA on top1 first.

    Takes validated results objects, or the (path, obj) pairs collect() returns.
    Duplicates of one run keep the most recently created file's numbers.
    """
    latest: dict[tuple, tuple[str, dict]] = {}
    for item in results:
        obj = item[1] if isinstance(item, tuple) else item
        row = _row(obj)
        key = (row["model"], row["target"], row["method"])
        created = str((obj.get("environment") or {}).get("created") or "")
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


def _rich_table(rows: list[dict]):
    from rich.table import Table
    from rich.text import Text

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
