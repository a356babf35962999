"""Results files on disk: read and validated, written atomically, gathered from a folder."""

from __future__ import annotations

import json
from pathlib import Path

from ..io import write_json
from .naming import results_name
from ..errors import SeparEvalError
from .schema import Results, ResultsError, SchemaProblems, parse


class ResultsClashError(SeparEvalError, FileExistsError):
    """The results file name is taken by another run (or by a file that is not a results file)."""


def load_results(path) -> Results:
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
    try:
        return parse(obj)
    except SchemaProblems as problems:
        raise ResultsError(path, problems.problems) from None


def _same_run(a: Results, b: Results) -> bool:
    return (a.model, a.target, a.method) == (b.model, b.target, b.method)


def write_results(results: Results | dict, directory) -> Path:
    """Validate and write atomically; re-running the same run replaces its file.

    Raises ResultsError for an invalid object and ResultsClashError if the file name
    is taken by a different run (or by something that is not a results file).
    """
    directory = Path(directory)
    if not isinstance(results, Results):
        try:
            results = parse(results)
        except SchemaProblems as problems:
            raise ResultsError(directory, problems.problems) from None
    path = directory / f"{results_name(results)}.json"
    if path.exists():
        try:
            existing = load_results(path)
        except ResultsError as err:
            raise ResultsClashError(f"{path} exists and is not a valid results file; not overwriting it: move it "
                                    "away, or choose another --output.") from err
        if not _same_run(existing, results):
            raise ResultsClashError(
                f"{path} holds a different run (model, target or method differ); not overwriting it: choose "
                "another --output."
            )
    directory.mkdir(parents=True, exist_ok=True)
    write_json(path, results.to_dict(), sync=True)
    return path


def collect_results(directory) -> tuple[list[tuple[Path, Results]], list[tuple[Path, str]]]:
    """Load every *.json in directory: (valid results, (path, reason) for the rest)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise NotADirectoryError(f"results directory not found: {directory}")
    found, errors = [], []
    for path in sorted(directory.glob("*.json")):
        try:
            found.append((path, load_results(path)))
        except ResultsError as err:
            errors.append((path, str(err)))
    return found, errors
