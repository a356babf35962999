"""Where the package's own files live: the lm-eval task YAML, their data, and the targets (package data)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def tasks_dir() -> Path:
    """`separ_eval/tasks/`, in a checkout (where `tasks/` links to it) as in an installed wheel.

    lm-eval indexes task folders by path, so this is a real folder on disk, not a zip member.
    """
    folder = Path(str(resources.files("separ_eval").joinpath("tasks")))
    if not (folder / "targets").is_dir():
        raise FileNotFoundError(f"separ-eval's task folder {folder} is missing or incomplete: reinstall the package.")
    return folder
